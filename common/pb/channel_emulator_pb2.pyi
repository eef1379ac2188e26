from . import frame_pb2 as _frame_pb2
from . import receiver_pb2 as _receiver_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChannelConfig(_message.Message):
    __slots__ = ("model", "snr_db", "seed")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    model: str
    snr_db: float
    seed: int
    def __init__(self, model: _Optional[str] = ..., snr_db: _Optional[float] = ..., seed: _Optional[int] = ...) -> None: ...

class GetConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ForwardRequest(_message.Message):
    __slots__ = ("frame",)
    FRAME_FIELD_NUMBER: _ClassVar[int]
    frame: _frame_pb2.Frame
    def __init__(self, frame: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ...) -> None: ...

class ForwardResponse(_message.Message):
    __slots__ = ("decoded", "channel", "channel_seconds", "receiver_call_seconds")
    DECODED_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_CALL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    decoded: _receiver_pb2.DecodeResponse
    channel: _frame_pb2.ChannelState
    channel_seconds: float
    receiver_call_seconds: float
    def __init__(self, decoded: _Optional[_Union[_receiver_pb2.DecodeResponse, _Mapping]] = ..., channel: _Optional[_Union[_frame_pb2.ChannelState, _Mapping]] = ..., channel_seconds: _Optional[float] = ..., receiver_call_seconds: _Optional[float] = ...) -> None: ...

class ApplyRequest(_message.Message):
    __slots__ = ("frame",)
    FRAME_FIELD_NUMBER: _ClassVar[int]
    frame: _frame_pb2.Frame
    def __init__(self, frame: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ...) -> None: ...

class ApplyResponse(_message.Message):
    __slots__ = ("frame", "channel_seconds")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    frame: _frame_pb2.Frame
    channel_seconds: float
    def __init__(self, frame: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ..., channel_seconds: _Optional[float] = ...) -> None: ...

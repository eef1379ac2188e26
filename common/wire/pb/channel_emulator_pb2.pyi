from . import frame_pb2 as _frame_pb2
from . import receiver_pb2 as _receiver_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChannelConfig(_message.Message):
    __slots__ = ("model", "snr_db", "seed", "k_factor", "coherence_symbols", "csi", "equalizer", "max_channel_uses", "over_budget", "symbol_rate", "delay_seconds", "jitter_seconds", "loss_probability", "queue_frames")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    K_FACTOR_FIELD_NUMBER: _ClassVar[int]
    COHERENCE_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    CSI_FIELD_NUMBER: _ClassVar[int]
    EQUALIZER_FIELD_NUMBER: _ClassVar[int]
    MAX_CHANNEL_USES_FIELD_NUMBER: _ClassVar[int]
    OVER_BUDGET_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_RATE_FIELD_NUMBER: _ClassVar[int]
    DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    JITTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LOSS_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FRAMES_FIELD_NUMBER: _ClassVar[int]
    model: str
    snr_db: float
    seed: int
    k_factor: float
    coherence_symbols: int
    csi: str
    equalizer: str
    max_channel_uses: int
    over_budget: str
    symbol_rate: float
    delay_seconds: float
    jitter_seconds: float
    loss_probability: float
    queue_frames: int
    def __init__(self, model: _Optional[str] = ..., snr_db: _Optional[float] = ..., seed: _Optional[int] = ..., k_factor: _Optional[float] = ..., coherence_symbols: _Optional[int] = ..., csi: _Optional[str] = ..., equalizer: _Optional[str] = ..., max_channel_uses: _Optional[int] = ..., over_budget: _Optional[str] = ..., symbol_rate: _Optional[float] = ..., delay_seconds: _Optional[float] = ..., jitter_seconds: _Optional[float] = ..., loss_probability: _Optional[float] = ..., queue_frames: _Optional[int] = ...) -> None: ...

class LinkTiming(_message.Message):
    __slots__ = ("queue_seconds", "transmit_seconds", "propagation_seconds")
    QUEUE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TRANSMIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROPAGATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    queue_seconds: float
    transmit_seconds: float
    propagation_seconds: float
    def __init__(self, queue_seconds: _Optional[float] = ..., transmit_seconds: _Optional[float] = ..., propagation_seconds: _Optional[float] = ...) -> None: ...

class GetConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ForwardRequest(_message.Message):
    __slots__ = ("frame",)
    FRAME_FIELD_NUMBER: _ClassVar[int]
    frame: _frame_pb2.Frame
    def __init__(self, frame: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ...) -> None: ...

class ForwardResponse(_message.Message):
    __slots__ = ("decoded", "channel", "channel_seconds", "receiver_call_seconds", "link")
    DECODED_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_CALL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    decoded: _receiver_pb2.DecodeResponse
    channel: _frame_pb2.ChannelState
    channel_seconds: float
    receiver_call_seconds: float
    link: LinkTiming
    def __init__(self, decoded: _Optional[_Union[_receiver_pb2.DecodeResponse, _Mapping]] = ..., channel: _Optional[_Union[_frame_pb2.ChannelState, _Mapping]] = ..., channel_seconds: _Optional[float] = ..., receiver_call_seconds: _Optional[float] = ..., link: _Optional[_Union[LinkTiming, _Mapping]] = ...) -> None: ...

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

from . import frame_pb2 as _frame_pb2
from . import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DecodeRequest(_message.Message):
    __slots__ = ("frame",)
    FRAME_FIELD_NUMBER: _ClassVar[int]
    frame: _frame_pb2.Frame
    def __init__(self, frame: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ...) -> None: ...

class DecodeResponse(_message.Message):
    __slots__ = ("frame_id", "image", "decode_seconds", "semantic_map", "adapters")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    DECODE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_MAP_FIELD_NUMBER: _ClassVar[int]
    ADAPTERS_FIELD_NUMBER: _ClassVar[int]
    frame_id: str
    image: _tensor_pb2.Tensor
    decode_seconds: float
    semantic_map: _tensor_pb2.Tensor
    adapters: _containers.RepeatedCompositeFieldContainer[_frame_pb2.AdapterChoice]
    def __init__(self, frame_id: _Optional[str] = ..., image: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., decode_seconds: _Optional[float] = ..., semantic_map: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., adapters: _Optional[_Iterable[_Union[_frame_pb2.AdapterChoice, _Mapping]]] = ...) -> None: ...

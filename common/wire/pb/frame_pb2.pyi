from . import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageSize(_message.Message):
    __slots__ = ("height", "width", "channels")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    height: int
    width: int
    channels: int
    def __init__(self, height: _Optional[int] = ..., width: _Optional[int] = ..., channels: _Optional[int] = ...) -> None: ...

class FrameHeader(_message.Message):
    __slots__ = ("frame_id", "codec", "codec_version", "model_version", "image_size", "num_classes", "source_values", "pilot_spacing", "pad_bottom", "pad_right")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    CODEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_VALUES_FIELD_NUMBER: _ClassVar[int]
    PILOT_SPACING_FIELD_NUMBER: _ClassVar[int]
    PAD_BOTTOM_FIELD_NUMBER: _ClassVar[int]
    PAD_RIGHT_FIELD_NUMBER: _ClassVar[int]
    frame_id: str
    codec: str
    codec_version: int
    model_version: str
    image_size: ImageSize
    num_classes: int
    source_values: int
    pilot_spacing: int
    pad_bottom: int
    pad_right: int
    def __init__(self, frame_id: _Optional[str] = ..., codec: _Optional[str] = ..., codec_version: _Optional[int] = ..., model_version: _Optional[str] = ..., image_size: _Optional[_Union[ImageSize, _Mapping]] = ..., num_classes: _Optional[int] = ..., source_values: _Optional[int] = ..., pilot_spacing: _Optional[int] = ..., pad_bottom: _Optional[int] = ..., pad_right: _Optional[int] = ...) -> None: ...

class SymbolBlock(_message.Message):
    __slots__ = ("name", "symbols", "power_scale", "erased_tail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    POWER_SCALE_FIELD_NUMBER: _ClassVar[int]
    ERASED_TAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    symbols: _tensor_pb2.Tensor
    power_scale: float
    erased_tail: int
    def __init__(self, name: _Optional[str] = ..., symbols: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., power_scale: _Optional[float] = ..., erased_tail: _Optional[int] = ...) -> None: ...

class ChannelState(_message.Message):
    __slots__ = ("model", "snr_db", "noise_variance", "measured_snr_db", "k_factor", "coherence_symbols", "csi", "equalizer", "fading", "channel_uses", "bandwidth_ratio", "truncated_symbols", "erased")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    NOISE_VARIANCE_FIELD_NUMBER: _ClassVar[int]
    MEASURED_SNR_DB_FIELD_NUMBER: _ClassVar[int]
    K_FACTOR_FIELD_NUMBER: _ClassVar[int]
    COHERENCE_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    CSI_FIELD_NUMBER: _ClassVar[int]
    EQUALIZER_FIELD_NUMBER: _ClassVar[int]
    FADING_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_USES_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_RATIO_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    ERASED_FIELD_NUMBER: _ClassVar[int]
    model: str
    snr_db: float
    noise_variance: float
    measured_snr_db: float
    k_factor: float
    coherence_symbols: int
    csi: str
    equalizer: str
    fading: _tensor_pb2.Tensor
    channel_uses: int
    bandwidth_ratio: float
    truncated_symbols: int
    erased: bool
    def __init__(self, model: _Optional[str] = ..., snr_db: _Optional[float] = ..., noise_variance: _Optional[float] = ..., measured_snr_db: _Optional[float] = ..., k_factor: _Optional[float] = ..., coherence_symbols: _Optional[int] = ..., csi: _Optional[str] = ..., equalizer: _Optional[str] = ..., fading: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., channel_uses: _Optional[int] = ..., bandwidth_ratio: _Optional[float] = ..., truncated_symbols: _Optional[int] = ..., erased: _Optional[bool] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("header", "blocks", "side_info", "channel")
    class SideInfoEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _tensor_pb2.Tensor
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ...) -> None: ...
    HEADER_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    SIDE_INFO_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    header: FrameHeader
    blocks: _containers.RepeatedCompositeFieldContainer[SymbolBlock]
    side_info: _containers.MessageMap[str, _tensor_pb2.Tensor]
    channel: ChannelState
    def __init__(self, header: _Optional[_Union[FrameHeader, _Mapping]] = ..., blocks: _Optional[_Iterable[_Union[SymbolBlock, _Mapping]]] = ..., side_info: _Optional[_Mapping[str, _tensor_pb2.Tensor]] = ..., channel: _Optional[_Union[ChannelState, _Mapping]] = ...) -> None: ...

class AdapterChoice(_message.Message):
    __slots__ = ("model", "snr_db", "bandwidth_ratio", "gate", "expert")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_RATIO_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    EXPERT_FIELD_NUMBER: _ClassVar[int]
    model: str
    snr_db: float
    bandwidth_ratio: float
    gate: _containers.RepeatedScalarFieldContainer[float]
    expert: int
    def __init__(self, model: _Optional[str] = ..., snr_db: _Optional[float] = ..., bandwidth_ratio: _Optional[float] = ..., gate: _Optional[_Iterable[float]] = ..., expert: _Optional[int] = ...) -> None: ...

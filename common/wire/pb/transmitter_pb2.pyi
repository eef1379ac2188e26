from . import frame_pb2 as _frame_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Scoring(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCORING_UNSPECIFIED: _ClassVar[Scoring]
    SCORING_NONE: _ClassVar[Scoring]
    SCORING_PIXELS: _ClassVar[Scoring]
    SCORING_FULL: _ClassVar[Scoring]
SCORING_UNSPECIFIED: Scoring
SCORING_NONE: Scoring
SCORING_PIXELS: Scoring
SCORING_FULL: Scoring

class TransmitRequest(_message.Message):
    __slots__ = ("image", "codec", "bandwidth_ratio", "image_id", "pilot_spacing", "design_snr_db", "scoring", "omit_images")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_RATIO_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    PILOT_SPACING_FIELD_NUMBER: _ClassVar[int]
    DESIGN_SNR_DB_FIELD_NUMBER: _ClassVar[int]
    SCORING_FIELD_NUMBER: _ClassVar[int]
    OMIT_IMAGES_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    codec: str
    bandwidth_ratio: float
    image_id: str
    pilot_spacing: int
    design_snr_db: float
    scoring: Scoring
    omit_images: bool
    def __init__(self, image: _Optional[bytes] = ..., codec: _Optional[str] = ..., bandwidth_ratio: _Optional[float] = ..., image_id: _Optional[str] = ..., pilot_spacing: _Optional[int] = ..., design_snr_db: _Optional[float] = ..., scoring: _Optional[_Union[Scoring, str]] = ..., omit_images: _Optional[bool] = ...) -> None: ...

class Quality(_message.Message):
    __slots__ = ("psnr_db", "ssim", "miou")
    PSNR_DB_FIELD_NUMBER: _ClassVar[int]
    SSIM_FIELD_NUMBER: _ClassVar[int]
    MIOU_FIELD_NUMBER: _ClassVar[int]
    psnr_db: float
    ssim: float
    miou: float
    def __init__(self, psnr_db: _Optional[float] = ..., ssim: _Optional[float] = ..., miou: _Optional[float] = ...) -> None: ...

class StageTimings(_message.Message):
    __slots__ = ("encode_seconds", "channel_seconds", "decode_seconds", "end_to_end_seconds", "overhead_seconds", "quality_seconds", "link_seconds")
    ENCODE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DECODE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_TO_END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OVERHEAD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    QUALITY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LINK_SECONDS_FIELD_NUMBER: _ClassVar[int]
    encode_seconds: float
    channel_seconds: float
    decode_seconds: float
    end_to_end_seconds: float
    overhead_seconds: float
    quality_seconds: float
    link_seconds: float
    def __init__(self, encode_seconds: _Optional[float] = ..., channel_seconds: _Optional[float] = ..., decode_seconds: _Optional[float] = ..., end_to_end_seconds: _Optional[float] = ..., overhead_seconds: _Optional[float] = ..., quality_seconds: _Optional[float] = ..., link_seconds: _Optional[float] = ...) -> None: ...

class TransmitResponse(_message.Message):
    __slots__ = ("image_id", "frame_id", "codec", "channel_uses", "bandwidth_ratio", "channel", "quality", "timings", "reconstruction_png", "image_size", "received_map_png", "requested_codec", "domain_score", "design_snr_db", "transmitter_adapters", "receiver_adapters")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_USES_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_RATIO_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    RECONSTRUCTION_PNG_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_MAP_PNG_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_CODEC_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    DESIGN_SNR_DB_FIELD_NUMBER: _ClassVar[int]
    TRANSMITTER_ADAPTERS_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_ADAPTERS_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    frame_id: str
    codec: str
    channel_uses: int
    bandwidth_ratio: float
    channel: _frame_pb2.ChannelState
    quality: Quality
    timings: StageTimings
    reconstruction_png: bytes
    image_size: _frame_pb2.ImageSize
    received_map_png: bytes
    requested_codec: str
    domain_score: float
    design_snr_db: float
    transmitter_adapters: _containers.RepeatedCompositeFieldContainer[_frame_pb2.AdapterChoice]
    receiver_adapters: _containers.RepeatedCompositeFieldContainer[_frame_pb2.AdapterChoice]
    def __init__(self, image_id: _Optional[str] = ..., frame_id: _Optional[str] = ..., codec: _Optional[str] = ..., channel_uses: _Optional[int] = ..., bandwidth_ratio: _Optional[float] = ..., channel: _Optional[_Union[_frame_pb2.ChannelState, _Mapping]] = ..., quality: _Optional[_Union[Quality, _Mapping]] = ..., timings: _Optional[_Union[StageTimings, _Mapping]] = ..., reconstruction_png: _Optional[bytes] = ..., image_size: _Optional[_Union[_frame_pb2.ImageSize, _Mapping]] = ..., received_map_png: _Optional[bytes] = ..., requested_codec: _Optional[str] = ..., domain_score: _Optional[float] = ..., design_snr_db: _Optional[float] = ..., transmitter_adapters: _Optional[_Iterable[_Union[_frame_pb2.AdapterChoice, _Mapping]]] = ..., receiver_adapters: _Optional[_Iterable[_Union[_frame_pb2.AdapterChoice, _Mapping]]] = ...) -> None: ...

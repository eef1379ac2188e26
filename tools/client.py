"""Client side of the chain: send images to a transmitter, configure the channel."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from semcom.common.serving.rpc import sync_channel
from semcom.common.serving.tls import bearer
from semcom.common.wire.pb import channel_emulator_pb2, channel_emulator_pb2_grpc, transmitter_pb2, transmitter_pb2_grpc


@dataclass
class ImageToSend:
    image_id: str
    data: bytes


def read_images(paths: Iterable[Path]) -> list[ImageToSend]:
    images = []
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"no such image file: {path}")
        images.append(ImageToSend(path.stem, path.read_bytes()))
    return images


def transmit_all(address: str, images: list[ImageToSend], *, codec: str = "", bandwidth_ratio: float = 0.0,
                 timeout: float = 120.0,
                 scoring: int = transmitter_pb2.SCORING_FULL) -> Iterator[transmitter_pb2.TransmitResponse]:
    """Streams the images through one TransmitStream call; yields results in order. scoring: TransmitRequest's
    (full by default: the tables these results go into show the mIoU)."""
    with sync_channel(address) as channel:
        stub = transmitter_pb2_grpc.TransmitterStub(channel)
        requests = (
            transmitter_pb2.TransmitRequest(image=i.data, image_id=i.image_id, codec=codec,
                                            bandwidth_ratio=bandwidth_ratio, scoring=scoring)
            for i in images
        )
        yield from stub.TransmitStream(requests, timeout=timeout)


def configure_channel(address: str, *, timeout: float = 10.0, token: str = "",
                      **settings) -> channel_emulator_pb2.ChannelConfig:
    """Sets the given channel settings (model, snr_db, seed); returns the new configuration. token: the
    channel emulator's --admin-token, where it has one."""
    with sync_channel(address) as channel:
        stub = channel_emulator_pb2_grpc.ChannelEmulatorStub(channel)
        request = channel_emulator_pb2.ChannelConfig(**{k: v for k, v in settings.items() if v is not None})
        return stub.Configure(request, timeout=timeout, metadata=bearer(token))


def describe_channel(config: channel_emulator_pb2.ChannelConfig) -> str:
    """One line of key=value for every setting, in the proto's field order."""
    parts = []
    for field in config.DESCRIPTOR.fields:
        value = getattr(config, field.name) if config.HasField(field.name) else "unset"
        parts.append(f"{field.name}={value:g}" if isinstance(value, float) else f"{field.name}={value}")
    return " ".join(parts)


def get_channel_config(address: str, *, timeout: float = 10.0) -> channel_emulator_pb2.ChannelConfig:
    with sync_channel(address) as channel:
        stub = channel_emulator_pb2_grpc.ChannelEmulatorStub(channel)
        return stub.GetConfig(channel_emulator_pb2.GetConfigRequest(), timeout=timeout)


RESULT_COLUMNS = ("image", "codec", "SNR dB", "PSNR dB", "SSIM", "symbols", "k/n",
                  "encode ms", "channel ms", "decode ms", "quality ms", "gRPC ms", "end-to-end ms")


def result_row(response: transmitter_pb2.TransmitResponse) -> tuple[str, ...]:
    t = response.timings
    psnr = "inf" if math.isinf(response.quality.psnr_db) else f"{response.quality.psnr_db:.2f}"
    codec = response.codec
    if response.requested_codec and response.requested_codec != codec:  # a photo out of a semantic codec's domain
        codec = f"{codec} (not {response.requested_codec}: out of domain, {response.domain_score:.3f})"
    return (response.image_id, codec, f"{response.channel.snr_db:g}", psnr,
            f"{response.quality.ssim:.4f}", str(response.channel_uses), f"{response.bandwidth_ratio:.4f}",
            *(f"{1000 * s:.1f}" for s in (t.encode_seconds, t.channel_seconds, t.decode_seconds,
                                          t.quality_seconds, t.overhead_seconds, t.end_to_end_seconds)))


def format_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    line = lambda cells: "  ".join(cell.rjust(w) for cell, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(columns), line(tuple("-" * w for w in widths)), *(line(r) for r in rows)])


def describe_rpc_error(error: grpc.RpcError) -> str:
    return f"{error.code().name}: {error.details()}"

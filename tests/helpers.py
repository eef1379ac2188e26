"""Helpers for the tests: images, crafted files, metric scraping, free ports."""

from __future__ import annotations

import io
import socket
import struct
import urllib.request
import zlib

import grpc
import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from semcom.common.data import photos, sample_images
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.serving.server import ServiceServer
from semcom.tools.chain import Chain

# The tests that need the installable photos skip with this reason where they are absent (CI fetches them).
needs_photos = pytest.mark.skipif(bool(photos.missing()), reason=f"the photos are not installed in {photos.photos_dir()}: "
                                                                  "`semcom data photos` (make test runs it)")


def decode_frame(frame, runtime: DecoderRuntime | None = None) -> np.ndarray:
    """The receiver's in-process decode (the Chain's RX) of a frame the channel delivered: the image."""
    return Chain(runtime=runtime or DecoderRuntime()).decode(frame)[0]


def encoded_frame(image: np.ndarray | None = None):
    """A linear_analog frame of `image` (the sample scene by default), as the transmitter sends it."""
    from semcom.common import codecs
    from semcom.common.data.images import decode_image
    from semcom.common.wire import frames

    image = image if image is not None else decode_image(sample_png())
    return frames.to_proto(codecs.get("linear_analog").encode(image, 0.5, "test-frame"))


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def sample_png() -> bytes:
    return sample_images()[0].read_bytes()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but holds no pixel data: a
    decompression bomb's first bytes, readable only up to the size check."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def scrape(server: ServiceServer) -> dict[tuple[str, tuple], float]:
    """The service's /metrics as {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5) as response:
        return parse_metrics(response.read().decode())


def parse_metrics(text: str) -> dict[tuple[str, tuple], float]:
    """Prometheus text as {(sample name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric(samples: dict, name: str, **labels) -> float:
    """Sum of the samples called `name` whose labels include `labels` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, l), v in samples.items() if n == name and wanted <= set(l))


def answered_by(samples: dict, service: str = "channel") -> dict[str, float]:
    """A service's calls to its pool answered OK, by backend node (semcom_<service>_backend_calls_total)."""
    return {dict(labels)["backend"]: value for (name, labels), value in samples.items()
            if name == f"semcom_{service}_backend_calls_total" and dict(labels)["grpc_code"] == "OK"}


def failed_calls(samples: dict, method: str) -> float:
    """Calls of `method` the service answered with any code but OK."""
    return sum(value for (name, labels), value in samples.items() if name == "grpc_server_handled_total"
               and dict(labels)["grpc_method"] == method and dict(labels)["grpc_code"] != "OK")


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_rpc_error(call, code, *fragments: str):
    """Runs `call`, which must fail with `code` and a message holding every fragment; returns the error."""
    with pytest.raises(grpc.RpcError) as raised:
        call()
    error = raised.value
    assert error.code() == code, error.details()
    for fragment in fragments:
        assert fragment in error.details()
    return error


def pretend_retrained(monkeypatch, model: str) -> None:
    """From here on the shipped `model`'s card has another sha256, as after a retraining: what was made from
    it (a student, an artifact) is stale."""
    from semcom.common.models import store

    shipped = store.card

    def retrained(name, *args, **kwargs):
        card = shipped(name, *args, **kwargs)
        return {**card, "sha256": "e" * 64} if name == model else card

    monkeypatch.setattr(store, "card", retrained)

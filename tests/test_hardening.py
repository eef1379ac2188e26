"""Bad input, through real servers on port 0: each gets its right status and a bounded message, and
the services stay up (issue 17's defects, each shown to be fixed)."""

from __future__ import annotations

import io

import grpc
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from helpers import assert_rpc_error, png_bytes, sample_png
from semcom.common.data.images import decode_image
from semcom.common.serving.errors import InvalidInput
from semcom.common.wire.pb import transmitter_pb2

METHODS = ["/semcom.v1.Transmitter/Transmit", "/semcom.v1.ChannelEmulator/Apply",
           "/semcom.v1.ChannelEmulator/Forward", "/semcom.v1.Receiver/Decode"]
SERVICE_OF = {"Transmitter": "transmitter", "ChannelEmulator": "channel", "Receiver": "receiver"}


def raw_call(services, method: str, payload: bytes, timeout: float = 10):
    """One unary call with `payload` as the request bytes, whatever they are."""
    server = getattr(services, SERVICE_OF[method.split(".")[-1].split("/")[0]])
    with grpc.insecure_channel(services.address(server)) as channel:
        call = channel.unary_unary(method, request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw)
        return call(payload, timeout=timeout)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("payload", [b"\xff\xff\xff\xff", b"\x0a\x80", b"\x12\x05abc"], ids=["garbage", "cut", "short"])
def test_request_bytes_that_do_not_parse_are_invalid_argument(services, transmitter, method, payload):
    assert_rpc_error(lambda: raw_call(services, method, payload), grpc.StatusCode.INVALID_ARGUMENT,
                     "request: not a valid semcom.v1.")
    assert transmitter.Transmit(transmitter_pb2.TransmitRequest(image=sample_png(), codec="linear_analog"),
                                timeout=30).image_size.width > 0  # still up


def test_an_unparseable_message_in_a_stream_ends_it_with_invalid_argument(services):
    with grpc.insecure_channel(services.address(services.transmitter)) as channel:
        stream = channel.stream_stream("/semcom.v1.Transmitter/TransmitStream", request_serializer=lambda raw: raw,
                                       response_deserializer=transmitter_pb2.TransmitResponse.FromString)
        good = transmitter_pb2.TransmitRequest(image=sample_png(), codec="linear_analog").SerializeToString()
        responses = stream(iter([good, b"\xff\xff\xff"]), timeout=30)
        assert next(responses).codec == "linear_analog"
        with pytest.raises(grpc.RpcError) as raised:
            next(responses)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid semcom.v1.TransmitRequest" in raised.value.details()


def png_with_text_chunk(megabytes: int) -> bytes:
    """A valid small PNG whose zTXt chunk inflates to `megabytes` (PIL refuses text past 1 MB)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * (megabytes << 20), zip=True)
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def truncated_chunk_png() -> bytes:
    """A PNG whose gAMA chunk is cut to 2 of its 4 bytes (CRC recomputed, so only the length is wrong)."""
    import struct
    import zlib

    data = png_bytes(np.zeros((8, 8, 3), np.uint8))
    body = b"gAMA" + b"\x00\x01"
    chunk = struct.pack(">I", 2) + body + struct.pack(">I", zlib.crc32(body))
    return data[:33] + chunk + data[33:]  # after the signature and IHDR


@pytest.mark.parametrize("data", [png_with_text_chunk(50), truncated_chunk_png()], ids=["ztxt-bomb", "short-gama"])
def test_images_pil_refuses_with_a_value_error_are_invalid_argument(transmitter, data):
    with pytest.raises(InvalidInput, match="not a decodable image"):
        decode_image(data)
    assert_rpc_error(lambda: transmitter.Transmit(transmitter_pb2.TransmitRequest(image=data, codec="linear_analog"),
                                                  timeout=30), grpc.StatusCode.INVALID_ARGUMENT, "not a decodable image")


@pytest.mark.parametrize("codec,width,limit", [("webp", 16_384, "16383"), ("jpeg", 65_536, "65500")])
def test_images_over_an_encoders_own_limit_are_refused_before_encoding(transmitter, codec, width, limit):
    data = png_bytes(np.full((1, width, 3), 90, np.uint8))
    assert_rpc_error(lambda: transmitter.Transmit(transmitter_pb2.TransmitRequest(image=data, codec=codec),
                                                  timeout=30),
                     grpc.StatusCode.INVALID_ARGUMENT, f"at most {limit} pixels a side")


def test_echoed_input_is_quoted_truncated(transmitter):
    name = "x" * 20_000  # echoed whole, it overflowed the client's 8 KiB metadata limit
    try:
        transmitter.Transmit(transmitter_pb2.TransmitRequest(image=sample_png(), codec=name), timeout=30)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
        assert "unknown codec 'xxx" in error.details() and "(19800 more characters)" in error.details()
        assert len(error.details()) < 1000
    else:
        raise AssertionError("an unknown codec was accepted")


@pytest.mark.parametrize("sent,labelled,message", [
    ("jpeg", "webp", "a JPEG file, not WEBP"),
    ("webp", "jpeg", "a WEBP file, not JPEG"),
    ("semantic", "semantic_map", "frame.blocks: semantic_map, latent; a semantic_map frame has semantic_map"),
    ("linear_analog", "deep_jscc", "frame.side_info: mean, sent_size; a deep_jscc frame has none"),
])
def test_a_frame_labelled_with_another_codec_is_refused(receiver, sent, labelled, message):
    from dataclasses import replace

    from semcom.common import codecs
    from semcom.common.wire import frames
    from semcom.common.wire.pb import receiver_pb2
    from semcom.tools.chain import Chain

    image = decode_image(sample_png())
    codec = codecs.get(sent)
    ratio = 0.3 if codec.capabilities.adjustable_bandwidth else codec.default_bandwidth_ratio  # room for a JPEG
    frame = Chain().transmit(codec.encode(image, ratio, "label"))
    mislabelled = replace(frame, codec=labelled, codec_version=codecs.get(labelled).version)
    assert_rpc_error(lambda: receiver.Decode(receiver_pb2.DecodeRequest(frame=frames.to_proto(mislabelled)),
                                             timeout=60), grpc.StatusCode.INVALID_ARGUMENT, message)

"""The codec contract: every registered codec declares its capabilities, and its one batch decode
keeps them (a map where it declares one, a bad frame's error in its own slot)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from semcom.channel_emulator.emulator import ChannelConfig, ChannelEmulator
from semcom.common import codecs
from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.serving.errors import InvalidInput
from semcom.receiver.pipeline import decode_frames, equalize_frame
from semcom.tools.evaluation import sweep

IMAGE = materialize(SyntheticScenes("val", 1))[0][0]


@pytest.mark.parametrize("codec_id", codecs.available())
def test_each_codec_decodes_a_batch_as_it_declares(codec_id):
    codec = codecs.get(codec_id)
    declared = codecs.capabilities(codec_id)
    assert isinstance(declared, codecs.Capabilities) and declared is type(codec).capabilities
    frame = codec.encode(IMAGE, codec.default_bandwidth_ratio, f"contract-{codec_id}")
    received = equalize_frame(ChannelEmulator(ChannelConfig(snr_db=20.0, seed=1)).apply(frame)[0])
    stale = replace(received, frame_id="stale", codec_version=codec.version + 1)
    good, bad = codec.decode_batch([received, stale], DecoderRuntime())
    image, received_map = good
    assert image.shape == IMAGE.shape and image.dtype.name == "uint8"
    assert (received_map is not None) == declared.returns_map
    assert isinstance(bad, InvalidInput) and "codec_version" in str(bad)
    if declared.decodes_to_labels:
        assert codec.decode_labels(received, DecoderRuntime()).ndim == 2


def test_the_receiver_groups_frames_by_codec_and_keeps_their_order():
    sent = [codecs.get(codec_id).encode(IMAGE, codecs.get(codec_id).default_bandwidth_ratio, f"order-{codec_id}")
            for codec_id in ("linear_analog", "semantic", "linear_analog", "semantic")]
    received = [ChannelEmulator(ChannelConfig(snr_db=20.0, seed=i)).apply(f)[0] for i, f in enumerate(sent)]
    results = decode_frames([*received, replace(received[0], codec="nonexistent")], DecoderRuntime())
    assert [result[1] is None for result in results[:4]] == [True, False, True, False]
    assert isinstance(results[4], InvalidInput) and "frame.header.codec" in str(results[4])


def test_the_sweep_enumerates_the_registered_codecs_generative_first():
    order = sweep.default_codecs()
    assert sorted(order) == codecs.available()
    generative = [codecs.capabilities(codec_id).generative for codec_id in order]
    assert generative == sorted(generative, reverse=True) and any(generative)

import math
from dataclasses import fields
from pathlib import Path

import numpy as np

from semcom.common.wire import frames, protogen
from semcom.common.wire.pb import frame_pb2


def test_committed_stubs_match_the_proto_files(tmp_path: Path):
    generated = {p.name: p.read_text() for p in protogen.generate(tmp_path)}
    committed = {p.name: p.read_text() for p in protogen.COMMITTED_STUBS.glob("*_pb2*.py*")}
    assert sorted(generated) == sorted(committed), "stub files differ: run `make proto`"
    stale = [name for name in generated if generated[name] != committed[name]]
    assert not stale, f"stubs out of date with proto/: {stale}; run `make proto` and commit"


def test_a_frame_and_its_channel_state_survive_the_wire_field_for_field():
    # Every ChannelState field has its proto field of the same name, and no proto field is left out.
    assert {f.name for f in fields(frames.ChannelState)} == set(frame_pb2.ChannelState.DESCRIPTOR.fields_by_name)
    rng = np.random.default_rng(0)
    symbols = (rng.standard_normal(6) + 1j * rng.standard_normal(6)).astype(np.complex64)
    state = frames.ChannelState(model="rician", snr_db=7.5, noise_variance=0.18, measured_snr_db=7.25, k_factor=3.0,
                                coherence_symbols=2, csi="estimated", equalizer="zf", fading=symbols[:3].copy(),
                                channel_uses=5, bandwidth_ratio=0.25, truncated_symbols=1, erased=True)
    frame = frames.Frame("id-1", "semantic", 2, 4, 5, [frames.SymbolBlock("map", symbols, 1.5, erased_tail=1)],
                         num_classes=19, model_version="abc", side_info={"mean": np.arange(3, dtype=np.float32)},
                         channel=state, pilot_spacing=3, pad_bottom=4, pad_right=2)
    back = frames.from_proto(frames.to_proto(frame), max_pixels=100, max_channel_uses=100)
    for name in (f.name for f in fields(frames.ChannelState)):
        sent, received = getattr(state, name), getattr(back.channel, name)
        if isinstance(sent, np.ndarray):
            assert np.array_equal(sent, received), name
        else:
            assert sent == received or (isinstance(sent, float) and math.isclose(sent, received, rel_tol=1e-6)), name
    for name in ("frame_id", "codec", "codec_version", "height", "width", "num_classes", "model_version",
                 "pilot_spacing", "pad_bottom", "pad_right"):
        assert getattr(back, name) == getattr(frame, name), name
    block = back.blocks[0]
    assert (block.name, block.power_scale, block.erased_tail) == ("map", 1.5, 1)
    assert np.array_equal(block.symbols, symbols) and np.array_equal(back.side_info["mean"], frame.side_info["mean"])

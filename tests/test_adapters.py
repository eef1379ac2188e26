"""Condition-aware adapters (CALA): the low-rank math, the gates, the artifact's round trip, the codecs' encode
and decode paths and the gate through real transmitter and receiver services."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import grpc
import numpy as np
import pytest
import torch

from helpers import assert_rpc_error, metric, png_bytes, scrape
from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common import codecs
from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.models import adapters, store
from semcom.common.models.adapters import SNR_KEY, VERSION_KEY, Condition
from semcom.common.models.jscc import MapDecoder
from semcom.common.models.lora import Adapted, Gate
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.serving.errors import FailedPrecondition, InvalidInput
from semcom.common.wire.pb import channel_emulator_pb2, transmitter_pb2, transmitter_pb2_grpc
from semcom.tools.chain import Chain
from semcom.tools.training.adapters import TASKS, AdapterConfig, loss, train_adapters
from semcom.tools.training.channel_in_the_loop import ChannelInTheLoop
from semcom.tools.training.data import TrainData
from semcom.tools.training.loop import TrainConfig

SCENES, LABELS = materialize(SyntheticScenes("val", 8))


def randomized(adapted: Adapted, seed: int = 0) -> Adapted:
    """The adapter with nonzero updates (a fresh one's are zero) and a random gate."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in adapted.named_parameters():
            if value.requires_grad:
                value.copy_(torch.randn(value.shape, generator=generator) * 0.2)
    return adapted.eval()


def small_adapted(gate: str = "cala", experts: int = 3) -> tuple[torch.nn.Module, Adapted]:
    torch.manual_seed(0)
    base = MapDecoder(num_classes=5, channels=2).eval()
    bands = ((7.5,), (1 / 24,)) if gate == "hard" else ((), ())
    return base, randomized(Adapted(base, Gate(gate, experts, bands=bands), rank=2))


def test_a_merged_adapter_equals_the_unmerged_low_rank_branch():
    base, adapted = small_adapted()
    x = torch.randn(2, 4, 8, 8)
    conditions = torch.tensor([[-3.0, 1 / 48], [16.0, 1 / 6]])
    with torch.no_grad():
        unmerged = adapted(x, condition=conditions)
        merged = torch.cat([adapted.merged(c)(x[i:i + 1]) for i, c in enumerate(conditions)])
        plain = base(x)
    assert torch.allclose(merged, unmerged, atol=1e-5), (merged - unmerged).abs().max()
    assert (unmerged - plain).abs().mean() > 1e-3  # the updates do change the network
    assert not torch.allclose(unmerged[0], adapted(x[:1], condition=conditions[1:])[0], atol=1e-3)  # per condition


def test_a_fresh_adapter_is_the_base_network_and_only_it_trains():
    base = MapDecoder(num_classes=5, channels=2).eval()
    adapted = Adapted(base, Gate("cala", 4), rank=1).eval()
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(adapted(x, condition=torch.tensor([[5.0, 1 / 24]])), base(x))
    trainable = {name for name, value in adapted.named_parameters() if value.requires_grad}
    stored = set(adapted.adapter_state())  # the updates and the gate (its band edges too), not the base
    assert trainable and trainable == stored - {"gate.snr_edges", "gate.rate_edges"}
    assert all(".down." in name or ".up." in name or name.startswith("gate.") for name in trainable)


def test_the_gates():
    conditions = torch.tensor([[0.0, 1 / 48], [0.0, 1 / 6], [10.0, 1 / 48], [10.0, 1 / 6]])
    hard = Gate("hard", 4, bands=((7.5,), (1 / 24,)))(conditions)
    assert torch.equal(hard, torch.eye(4))  # SNR band major, then the rate band
    soft = Gate("cala", 4)(conditions)
    assert torch.allclose(soft.sum(1), torch.ones(4)) and (soft > 0).all()
    assert torch.equal(Gate("single", 1)(conditions), torch.ones(4, 1))
    with pytest.raises(ValueError, match="hard selection: 3 experts for 2 SNR x 2 rate bands"):
        Gate("hard", 3, bands=((7.5,), (1 / 24,)))
    with pytest.raises(ValueError, match="gate 'soft'"):
        Gate("soft", 4)


def test_conditions_are_served_in_bands():
    assert Condition(7.4, 1 / 12).band() == Condition(7.0, round(1 / 12, 8))
    assert Condition(42.0, 1 / 12).band().snr_db == 20.0 and Condition(-30.0, 1 / 12).band().snr_db == -5.0
    with pytest.raises(ValueError, match="finite"):
        Condition(float("nan"), 1 / 12).band()


IMAGES, TARGETS = torch.from_numpy(SCENES).permute(0, 3, 1, 2).float() / 255, torch.from_numpy(LABELS).long()


@pytest.fixture
def map_task(monkeypatch, tmp_path):
    """The map codec's adapter task on fixed batches (8 scenes, so that a short run shows its loss falling on
    them), and a weights folder holding the base map codec."""
    weights = tmp_path / "weights"
    weights.mkdir()
    for suffix in (".pt", ".card.json"):
        shutil.copy(store.WEIGHTS_DIR / f"map_codec{suffix}", weights)
    fixed = TrainData(lambda rng, count: (IMAGES, TARGETS), (IMAGES, TARGETS), "8 fixed scenes", "the same 8")
    task = replace(TASKS["map_codec"], data=lambda config: fixed)
    monkeypatch.setitem(TASKS, "map_codec", task)
    return task, weights


def map_config(tmp_path, weights, steps: int, **changes) -> AdapterConfig:
    return AdapterConfig("map_codec", steps=steps, **changes, train=TrainConfig(
        steps=steps, batch_size=8, learning_rate=1e-2, checkpoint_dir=tmp_path / "ckpt", weights_dir=weights,
        bf16=False, resume=True))


def test_the_adapters_train_and_round_trip_through_their_file_and_card(map_task, tmp_path):
    """A short real run on the map codec (frozen base, the updates and the gate train), shipped, loaded back:
    the same gates and networks; a stale base or a changed file is refused."""
    task, weights = map_task
    card, parts = train_adapters(map_config(tmp_path, weights, 40))
    images, labels = IMAGES, TARGETS
    fresh = adapters.build("map_codec", store.load("map_codec"), {"adapter": card["adapter"]})

    def fixed_loss(trained):  # the same channel draws for both
        with torch.no_grad():
            return float(loss(task, trained, images, labels, ChannelInTheLoop(seed=5),
                              torch.Generator().manual_seed(1)))
    assert fixed_loss(parts) < 0.99 * fixed_loss(fresh)  # fresh: the base network (its updates are zero)

    for key in ("bytes", "sha256", "base_sha256", "adapter", "conditions", "parameters", "evaluation", "training"):
        assert key in card, key
    assert card["adapter"]["rank"] == 1 and card["adapter"]["experts"] == 4 and card["adapter"]["gate"] == "cala"
    assert card["bytes"] == (weights / "map_codec_adapters.pt").stat().st_size
    assert card["base_sha256"] == store.card("map_codec")["sha256"]
    assert set(card["evaluation"]["metrics"]) >= {"miou_ratio_1_24_matched_-2.5db", "miou_ratio_1_24_mismatch_17.5db"}
    assert 0 < card["parameters"]["fraction_per_expert"] < card["parameters"]["fraction_of_codec"] < 0.2

    loaded = adapters.load("map_codec", weights)
    condition = Condition(3.0, 1 / 24)
    with torch.no_grad():
        expected = parts["decoder"].gate(torch.tensor([[3.0, 1 / 24]]))[0].numpy()
        assert np.allclose(loaded.gate("decoder", condition), expected, atol=1e-6)
        planes = torch.randn(1, 8, 16, 32)
        assert torch.allclose(loaded.network("decoder", condition)(planes),
                              parts["decoder"](planes, condition=torch.tensor([[3.0, 1 / 24]])), atol=1e-4)
    assert loaded.network("decoder", Condition(3.2, 1 / 24)) is loaded.network("decoder", condition)  # one band

    stale = json.loads((weights / "map_codec.card.json").read_text())
    (weights / "map_codec.card.json").write_text(json.dumps({**stale, "sha256": "e" * 64}))
    with pytest.raises(store.WeightsMissing, match="semcom train adapters --base map_codec"):
        adapters.load("map_codec", weights)
    (weights / "map_codec.card.json").write_text(json.dumps(stale))
    with open(weights / "map_codec_adapters.pt", "ab") as file:
        file.write(b"\0")
    with pytest.raises(ValueError, match="does not match its model card"):
        adapters.load("map_codec", weights)


def test_an_adapter_run_resumes_from_its_checkpoint_and_refuses_other_settings(map_task, tmp_path, capsys):
    _, weights = map_task
    train_adapters(map_config(tmp_path, weights, 3), ship=False)
    card, _ = train_adapters(map_config(tmp_path, weights, 5), ship=False)
    assert "resumed from" in capsys.readouterr().err and card["training"]["steps"] == 5
    with pytest.raises(ValueError, match="resume with the same flags"):
        train_adapters(map_config(tmp_path, weights, 6, rank=2), ship=False)


def adapted_frame(codec_id: str, design_snr_db: float, channel_snr_db: float, image=None):
    chain = Chain(ChannelConfig(snr_db=channel_snr_db, seed=3))
    frame = chain.encode(SCENES[0] if image is None else image, codec_id, adapters=True, design_snr_db=design_snr_db)
    return chain, frame, chain.transmit(frame)


@pytest.mark.parametrize("codec_id", ["deep_jscc", "semantic_map"])
def test_an_adapted_frame_carries_its_condition_and_decodes_with_the_adapters(codec_id):
    chain, sent, received = adapted_frame(codec_id, 10.0, 10.0)
    assert set(sent.side_info) == {SNR_KEY, VERSION_KEY} and float(sent.side_info[SNR_KEY][0]) == 10.0
    plain = chain.encode(SCENES[0], codec_id)
    assert not plain.side_info and not np.allclose(plain.blocks[0].symbols, sent.blocks[0].symbols)
    adapted_image = chain.decode(received)[0]
    stripped = chain.decode(replace(received, side_info={}))[0]  # the same symbols through the plain decoder
    assert adapted_image.shape == SCENES[0].shape and not np.array_equal(adapted_image, stripped)

    codec = codecs.get(codec_id)
    at_transmitter, at_receiver = (codec.adapter_choices(frame, side) for frame, side in
                                   ((sent, "transmit"), (received, "receive")))
    assert [c.model for c in at_receiver] == [model for _, model in codec.adapted]
    assert [c.condition for c in at_transmitter] == [c.condition for c in at_receiver]  # design SNR = channel SNR
    # Each part has its own trained gate: the encoder's at the transmitter, the decoder's at the receiver, on one band.
    shipped = adapters.load(at_receiver[0].model)
    assert np.allclose(at_transmitter[0].gate, shipped.gate("encoder", at_receiver[0].condition))
    assert np.allclose(at_receiver[0].gate, shipped.gate("decoder", at_receiver[0].condition))


def test_adapted_frames_that_cannot_be_decoded_are_refused_with_their_reason():
    chain, _, received = adapted_frame("deep_jscc", 10.0, 10.0)
    other = {**received.side_info, VERSION_KEY: np.zeros(adapters.VERSION_BYTES, np.uint8)}
    with pytest.raises(FailedPrecondition, match="ship the same adapters to both ends"):
        chain.decode(replace(received, side_info=other))
    with pytest.raises(InvalidInput, match="adapter_snr_db"):
        chain.decode(replace(received, side_info={**received.side_info, SNR_KEY: np.array([np.nan], np.float32)}))
    with pytest.raises(InvalidInput, match="frame.side_info"):  # a codec without adapters takes no adapter keys
        frame = chain.encode(SCENES[0], "linear_analog", adapters=True)
        chain.decode(replace(chain.transmit(frame), side_info={**frame.side_info, SNR_KEY: np.ones(1, np.float32)}))
    with pytest.raises(InvalidInput, match="encoder student replaces"):
        chain.encode(SCENES[0], "semantic_map", adapters=True, map_encoder="student")


def test_an_int8_receiver_runs_the_adapters_low_rank_branch_in_its_onnx_graph(tmp_path):
    """The int8 receiver's graphs (`semcom quantize --decoders-only`) decode as the fp32 receiver's merged decoder,
    gate alike, and are refused once the adapters they were made from change."""
    from semcom.tools import quantize

    for name in ("deep_jscc", "deep_jscc_adapters"):
        for suffix in (".pt", ".card.json"):
            shutil.copy(store.WEIGHTS_DIR / f"{name}{suffix}", tmp_path)
    assert quantize.export_adapters(tmp_path, "test") == ["deep_jscc_adapters_decoder", "deep_jscc_adapters_gate"]
    int8, fp32 = DecoderRuntime("int8", weights_dir=tmp_path), DecoderRuntime("fp32", weights_dir=tmp_path)
    planes = np.random.default_rng(0).normal(size=(1, 128, 6, 8)).astype(np.float32)
    condition = Condition(4.2, 1 / 12)
    assert np.allclose(int8.decoder("deep_jscc", condition)(planes), fp32.decoder("deep_jscc", condition)(planes),
                       atol=1e-4)
    assert np.allclose(int8.adapter_gate("deep_jscc", condition), fp32.adapter_gate("deep_jscc", condition), atol=1e-6)
    assert not np.allclose(int8.decoder("deep_jscc", Condition(-4.0, 1 / 48))(planes),
                           int8.decoder("deep_jscc", condition)(planes), atol=1e-4)  # another band, another network
    card = json.loads((tmp_path / "deep_jscc_adapters.card.json").read_text())
    (tmp_path / "deep_jscc_adapters.card.json").write_text(json.dumps({**card, "sha256": "e" * 64}))
    with pytest.raises(FailedPrecondition, match="semcom quantize --decoders-only"):
        int8.decoder("deep_jscc", condition)


def test_the_gate_through_real_services_is_the_same_at_both_ends(services, channel_to, channel):
    from semcom.transmitter import server as transmitter_server

    channel.Configure(channel_emulator_pb2.ChannelConfig(snr_db=12.0))
    served = services.start(transmitter_server, channel=services.address(services.channel), adapters=True)
    try:
        stub = transmitter_pb2_grpc.TransmitterStub(channel_to(served))
        before = metric(scrape(services.receiver), "semcom_receiver_adapter_frames_total", codec="semantic")
        matched = stub.Transmit(transmitter_pb2.TransmitRequest(image=png_bytes(SCENES[1]), codec="semantic",
                                                                design_snr_db=12.0), timeout=120)
        assert [c.model for c in matched.transmitter_adapters] == ["map_codec", "latent_codec"]
        for sent, received in zip(matched.transmitter_adapters, matched.receiver_adapters, strict=True):
            assert (sent.model, sent.snr_db, sent.bandwidth_ratio) == (received.model, 12.0, received.bandwidth_ratio)
            band = Condition(received.snr_db, received.bandwidth_ratio)  # one band at both ends; each part's gate
            assert np.allclose(sent.gate, adapters.load(sent.model).gate("encoder", band), atol=1e-6)
            assert np.allclose(received.gate, adapters.load(received.model).gate("decoder", band), atol=1e-6)
            assert sum(received.gate) == pytest.approx(1.0, abs=1e-5)
        assert metric(scrape(services.receiver), "semcom_receiver_adapter_frames_total", codec="semantic") == before + 2

        mismatched = stub.Transmit(transmitter_pb2.TransmitRequest(image=png_bytes(SCENES[1]), codec="deep_jscc",
                                                                   design_snr_db=-2.0), timeout=120)
        (sent,), (received,) = mismatched.transmitter_adapters, mismatched.receiver_adapters
        assert (sent.snr_db, received.snr_db) == (-2.0, 12.0)  # each end gates on what it knows
        assert sent.bandwidth_ratio == pytest.approx(1 / 12) == received.bandwidth_ratio

        plain = transmitter_pb2_grpc.TransmitterStub(channel_to(services.transmitter)).Transmit(
            transmitter_pb2.TransmitRequest(image=png_bytes(SCENES[1]), codec="deep_jscc"), timeout=120)
        assert not plain.transmitter_adapters and not plain.receiver_adapters  # without --adapters, plain frames
        assert_rpc_error(lambda: stub.Transmit(transmitter_pb2.TransmitRequest(
            image=png_bytes(SCENES[1]), codec="deep_jscc", design_snr_db=float("inf")), timeout=60),
            grpc.StatusCode.INVALID_ARGUMENT, "design_snr_db")
    finally:
        services.loop.run(served.stop(0))

"""The channel-adaptive encoder student (issue 20): the large transmitter model's store, a student trained from it
with no teacher call, the transmitter's student path through real services, and the channel's SNR feedback."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from helpers import png_bytes, pretend_retrained
from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common import codecs
from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.data.images import decode_image
from semcom.common.data.labels import colorize
from semcom.common.models import store
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.models.segmenter import ChannelAdaptiveEncoder
from semcom.common.quality import confusion_matrix, mean_iou
from semcom.common.wire.pb import channel_emulator_pb2, transmitter_pb2, transmitter_pb2_grpc
from semcom.tools.chain import Chain
from semcom.tools.training import loop
from semcom.tools.training.channel_in_the_loop import ChannelInTheLoop
from semcom.tools.training.data import as_tensors
from semcom.tools.training.spec import one_hot
from semcom.tools.training.specs import encoder_student
from semcom.tools.training.teacher_store import StoreConfig, TeacherStore, build, teacher_calls
from semcom.transmitter.pipeline import ChannelFeedback


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """The large transmitter model on 5 training scenes, in shards of 2."""
    out = tmp_path_factory.mktemp("encoder_teacher_store")
    return build(StoreConfig(teacher="segmenter_large", count=5, out=out, shard_size=2, train_count=6)), out


def test_the_store_keeps_the_large_models_map_and_features_and_a_resumed_build_reruns_nothing(tiny_store):
    card, out = tiny_store
    assert (card["count"], len(card["shard_files"])) == (5, 3)
    assert card["teacher_network_calls"] == 3  # one batch a shard
    assert card["recipe"]["frozen_models"] == {model: store.card(model)["sha256"]
                                               for model in ("segmenter_large", "map_codec")}
    arrays = TeacherStore(out, "segmenter_large").arrays
    assert arrays["image"].dtype == np.uint8 and arrays["teacher_features"].dtype == np.float16
    images, _ = materialize(SyntheticScenes("train", 6, (64, 128)))
    assert np.array_equal(arrays["image"], images[:5]) and list(arrays["index"]) == [0, 1, 2, 3, 4]
    with torch.no_grad():  # the stored outputs are the large model's on the stored scene
        scene = as_tensors(images[4:5], images[:0, :, :, 0])[0]
        teacher_map = store.load("segmenter_large")["net"](scene).argmax(1)
        features = store.load("map_codec")["encoder"](one_hot(teacher_map, 19))
    assert np.array_equal(arrays["teacher_map"][4], teacher_map[0].numpy())
    assert np.abs(arrays["teacher_features"][4].astype(np.float32) - features[0].numpy()).max() < 0.02
    shards = {path: path.stat().st_mtime_ns for path in out.glob("shard_*.npz")}
    calls = teacher_calls("segmenter_large")
    try:
        resumed = build(StoreConfig(teacher="segmenter_large", count=5, out=out, shard_size=2, train_count=6,
                                    resume=True))
    finally:
        calls.close()
    assert calls.count == 0 and resumed["count"] == 5
    assert {path: path.stat().st_mtime_ns for path in out.glob("shard_*.npz")} == shards
    with pytest.raises(ValueError, match="holds the segmenter_large teacher's outputs, not diffusion's"):
        TeacherStore(out)
    with pytest.raises(ValueError, match="at most that many"):
        StoreConfig(teacher="segmenter_large", count=7, train_count=6)
    with pytest.raises(ValueError, match="--teacher"):
        StoreConfig(teacher="segmenter")


def test_a_student_trains_from_the_store_alone_through_the_receivers_map_decoder(tiny_store, tmp_path):
    """The real student, a few steps on the tiny store: 0 calls of the large model while it trains (the same
    hook counts the store's), its loss falls, and its card compares it with the large model."""
    _, out = tiny_store
    batch = TeacherStore(out, "segmenter_large").sample(np.random.default_rng(1), 4)
    parts = store.build(encoder_student.SPEC.architecture)
    def task_loss(encoder) -> float:
        with torch.no_grad():
            mean, _ = encoder(batch[0], torch.full((4,), 10.0))
            logits = encoder_student.map_decoder()(ChannelInTheLoop(seed=5).features(mean, 10.0))
            return float(torch.nn.functional.cross_entropy(logits, batch[1]))

    before = task_loss(parts["encoder"].eval())
    calls = teacher_calls("segmenter_large")
    loop_calls = []
    real_evaluate = encoder_student.SPEC.evaluate

    def evaluate(*args, **kwargs):  # the large model runs in the evaluation, after training: count up to there
        loop_calls.append(calls.count)
        return real_evaluate(*args, **kwargs)

    try:
        config = loop.TrainConfig(steps=40, batch_size=4, learning_rate=3e-3, val_count=2, teacher_store=out,
                                  checkpoint_dir=tmp_path / "checkpoints", weights_dir=tmp_path / "weights",
                                  checkpoint_every=1000, bf16=False)
        card = loop.train("encoder_student", config, spec=replace(encoder_student.SPEC, evaluate=evaluate))
    finally:
        calls.close()
    assert loop_calls == [0] and calls.count > 0  # none while training; the evaluation's large model is seen
    metrics = card["evaluation"]["metrics"]
    assert metrics["teacher_network_calls_in_training"] == 0
    assert {"miou_awgn_10db", "large_miou_awgn_10db", "miou_rayleigh_0db_told_10db",
            "rate_bits_per_frame_10db"} <= set(metrics)
    assert card["training"]["trained_on"] == {model: store.card(model)["sha256"]
                                              for model in ("segmenter_large", "map_codec")}
    assert card["training"]["final_loss"] < card["training"]["initial_loss"]
    assert task_loss(store.load("encoder_student", tmp_path / "weights")["encoder"]) < 0.8 * before


def test_the_adaptive_encoder_hears_the_snr_and_the_plain_one_does_not():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 64)
    adaptive, plain = ChannelAdaptiveEncoder().eval(), ChannelAdaptiveEncoder(snr_adaptive=False).eval()
    with torch.no_grad():
        assert not torch.allclose(adaptive(image, torch.tensor([0.0]))[0], adaptive(image, torch.tensor([20.0]))[0])
        assert torch.equal(plain(image, torch.tensor([0.0]))[0], plain(image)[0])
        mean, log_variance = adaptive(image, torch.tensor([10.0]))
    assert mean.shape == log_variance.shape == (1, 4, 8, 16)
    with pytest.raises(ValueError, match="design SNR"):
        adaptive(image)


def test_the_feedback_is_the_mean_snr_of_the_last_frames():
    feedback = ChannelFeedback(window=3)
    assert feedback.design_snr_db(10.0) == 10.0  # nothing back yet
    for snr in (1.0, 2.0, math.inf, 3.0, 7.0):  # a noiseless frame says nothing
        feedback.observe(snr)
    assert feedback.design_snr_db(10.0) == pytest.approx(4.0)  # 2, 3, 7


SCENES, LABELS = materialize(SyntheticScenes("val", 6))


def received_miou(encoder: str, snr_db: float) -> float:
    chain, codec = Chain(ChannelConfig(snr_db=snr_db, seed=3)), codecs.get("semantic_map")
    predicted = [codec.decode_labels(chain.transmit(chain.encode(image, "semantic_map", map_encoder=encoder,
                                                                 design_snr_db=snr_db)), DecoderRuntime())
                 for image in SCENES]
    return mean_iou(confusion_matrix(LABELS, np.stack(predicted), 19))


def test_the_shipped_student_sends_what_the_receivers_map_decoder_reads():
    """The shipped student in place of segmenter + map encoder: the same frame layout, the same receiver,
    a map close to the large pipeline's (the card and the README have the validation figures)."""
    image = SCENES[0]
    chain = Chain(ChannelConfig(snr_db=10.0, seed=3))
    student = chain.encode(image, "semantic_map", map_encoder="student", design_snr_db=10.0)
    shipped = chain.encode(image, "semantic_map")
    assert [b.symbols.shape for b in student.blocks] == [b.symbols.shape for b in shipped.blocks]
    assert not np.allclose(student.blocks[0].symbols, shipped.blocks[0].symbols)
    told_low = chain.encode(image, "semantic_map", map_encoder="student", design_snr_db=-5.0)
    assert not np.allclose(student.blocks[0].symbols, told_low.blocks[0].symbols)  # it adapts
    assert received_miou("student", 10.0) > received_miou("segmenter", 10.0) - 0.05
    with pytest.raises(ValueError, match="map encoder 'large'"):
        chain.encode(image, "semantic_map", map_encoder="large")


def test_the_transmitter_designs_for_the_snr_the_channel_feeds_back(services, channel_to, channel):
    from semcom.transmitter import server as transmitter_server

    channel.Configure(channel_emulator_pb2.ChannelConfig(snr_db=4.0))
    served = services.start(transmitter_server, channel=services.address(services.channel), map_encoder="student",
                            design_snr="feedback")
    try:
        stub = transmitter_pb2_grpc.TransmitterStub(channel_to(served))
        request = transmitter_pb2.TransmitRequest(image=png_bytes(SCENES[1]), codec="semantic_map")
        first = stub.Transmit(request, timeout=60)
        assert first.design_snr_db == 10.0  # --design-snr-db until the channel has said anything
        later = [stub.Transmit(request, timeout=60) for _ in range(3)]
        assert all(abs(reply.design_snr_db - 4.0) < 0.5 for reply in later)  # the SNR the frames saw
        seen = [reply.channel.measured_snr_db for reply in (first, *later[:2])]
        assert later[-1].design_snr_db == pytest.approx(np.mean(seen))  # the mean of what the frames before saw
        assert later[-1].design_snr_db != pytest.approx(seen[-1])  # not a copy of the last
        told = stub.Transmit(transmitter_pb2.TransmitRequest(image=png_bytes(SCENES[1]), codec="semantic_map",
                                                             design_snr_db=15.0), timeout=60)
        assert told.design_snr_db == 15.0 and told.codec == "semantic_map"
        received = decode_image(told.reconstruction_png)  # semantic_map's reconstruction is the received map
        assert (received == colorize(LABELS[1])).all(-1).mean() > 0.8  # read by the receiver's map decoder at 4 dB
    finally:
        services.loop.run(served.stop(0))
    with pytest.raises(ValueError, match="--map-encoder"):
        services.start(transmitter_server, channel=services.address(services.channel), map_encoder="large")


def test_a_student_of_another_map_codec_is_refused_at_start(services, monkeypatch):
    from semcom.transmitter import server as transmitter_server

    pretend_retrained(monkeypatch, "map_codec")
    with pytest.raises(store.WeightsMissing, match="encoder_student was made with map_codec .*semcom train "
                                                   "encoder_student"):
        services.start(transmitter_server, channel=services.address(services.channel), map_encoder="student")

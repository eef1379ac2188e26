"""Distillation (issue 20): the teacher store's round trip, a student trained from it with no teacher call,
and the receiver's student decoder through a real service."""

from __future__ import annotations

import json
import shutil

import grpc
import numpy as np
import pytest
import torch

from helpers import assert_rpc_error, metric, pretend_retrained, scrape
from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.models import runtime, store
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.models.sampling import CosineSchedule, SamplerSettings
from semcom.common.quality import psnr_db
from semcom.common.wire import frames
from semcom.common.wire.pb import receiver_pb2, receiver_pb2_grpc
from semcom.tools.chain import Chain
from semcom.tools.training import loop
from semcom.tools.training.specs import diffusion_student
from semcom.tools.training.teacher_store import NetworkCalls, StoreConfig, TeacherStore, build, teacher_calls


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """5 teacher decodes of 2 steps each, in shards of 2."""
    out = tmp_path_factory.mktemp("teacher_store")
    return build(StoreConfig(count=5, out=out, steps=2, shard_size=2, train_count=20)), out


def test_the_store_keeps_what_the_teacher_made_and_a_resumed_build_reruns_nothing(tiny_store):
    card, out = tiny_store
    assert (card["count"], len(card["shard_files"])) == (5, 3)
    assert card["teacher_network_calls"] == 5 * 2  # 2 steps an item; guidance's two halves are one call
    assert card["recipe"]["frozen_models"]["diffusion"] == store.card("diffusion")["sha256"]
    teacher = TeacherStore(out)
    arrays = teacher.arrays
    assert len(teacher) == 5 and arrays["condition"].dtype == np.float16
    assert set(arrays["t_start"][arrays["mode"] == 0]) <= set(range(800, 1000))  # semantic: from the channel
    assert set(arrays["t_start"][arrays["mode"] > 0]) == {999}  # map-only modes: pure noise
    # The stored output is the teacher's from the stored start and condition (float16 storage aside).
    settings = SamplerSettings(steps=2, guidance_scale=1.5)
    item = 0
    again = settings.sampler(CosineSchedule()).sample_from(
        DecoderRuntime(sampler=settings).noise_predictor(), arrays["condition"][item:item + 1].astype(np.float32),
        arrays["x_start"][item:item + 1].astype(np.float32), int(arrays["t_start"][item]))
    assert np.abs(again - arrays["teacher"][item:item + 1]).max() < 0.05

    x_start, t_start, condition, target = teacher.sample(np.random.default_rng(0), 4)
    assert x_start.shape == target.shape == (4, 3, 64, 128) and condition.shape == (4, 22, 64, 128)
    assert t_start.dtype == torch.int64

    shards = {path: path.stat().st_mtime_ns for path in out.glob("shard_*.npz")}
    calls = teacher_calls()
    try:
        resumed = build(StoreConfig(count=5, out=out, steps=2, shard_size=2, train_count=20, resume=True))
    finally:
        calls.close()
    assert calls.count == 0 and resumed["teacher_network_calls"] == card["teacher_network_calls"]
    assert {path: path.stat().st_mtime_ns for path in out.glob("shard_*.npz")} == shards
    with pytest.raises(ValueError, match="--resume: .* was built with"):
        build(StoreConfig(count=5, out=out, steps=3, shard_size=2, train_count=20, resume=True))


def test_a_resumed_build_makes_only_what_is_missing(tiny_store, tmp_path):
    """Grown from 5 to 7 items in shards of 2: the short third shard is made again, and a fourth added; an
    interrupted shard's temporary file is not taken for a shard."""
    _, built = tiny_store
    out = tmp_path / "store"
    shutil.copytree(built, out)
    (out / ".shard_00003.npz").write_bytes(b"half a shard")
    calls = teacher_calls()
    try:
        card = build(StoreConfig(count=7, out=out, steps=2, shard_size=2, train_count=20, resume=True))
    finally:
        calls.close()
    assert calls.count == (2 + 1) * 2  # 3 items of 2 steps
    assert card["count"] == len(TeacherStore(out)) == 7
    assert card["shard_files"] == [f"shard_{i:05d}.npz" for i in range(4)]
    smaller = build(StoreConfig(count=3, out=out, steps=2, shard_size=2, train_count=20, resume=True))
    assert smaller["count"] == len(TeacherStore(out)) == 3 and sorted(p.name for p in out.glob("shard_*")) == [
        "shard_00000.npz", "shard_00001.npz"]


def test_a_store_of_another_teacher_is_refused(tiny_store, tmp_path):
    _, out = tiny_store
    card = json.loads((out / "card.json").read_text())
    card["recipe"]["frozen_models"]["diffusion"] = "0" * 64
    (tmp_path / "card.json").write_text(json.dumps(card))
    with pytest.raises(store.WeightsMissing, match="made with diffusion 000000000000.*semcom distill store"):
        TeacherStore(tmp_path)
    with pytest.raises(FileNotFoundError, match="semcom distill store"):
        TeacherStore(tmp_path / "none")


def test_a_student_trains_from_the_store_alone_and_learns_the_teacher(tiny_store, tmp_path):
    """A few steps of the real student on the tiny store: the loop makes 0 teacher calls (counted on the shipped
    teacher's module, which the store's own count proves it sees), and the student moves toward the teacher's
    outputs."""
    _, out = tiny_store
    teacher = TeacherStore(out)
    batch = teacher.sample(np.random.default_rng(1), 5)
    parts = store.build(diffusion_student.SPEC.architecture)
    with torch.no_grad():
        before = diffusion_student.loss(parts, *batch, None).item()
    calls = teacher_calls()
    try:
        config = loop.TrainConfig(steps=30, batch_size=4, learning_rate=2e-3, val_count=2, teacher_store=out,
                                  checkpoint_dir=tmp_path / "checkpoints", weights_dir=tmp_path / "weights",
                                  checkpoint_every=1000)
        card = loop.train("diffusion_student", config)
    finally:
        calls.close()
    assert calls.count == 0
    assert card["evaluation"]["metrics"]["teacher_network_calls_in_training"] == 0
    assert card["training"]["trained_on"] == {model: store.card(model)["sha256"]
                                              for model in ("diffusion", "map_codec", "latent_codec")}
    trained = store.load("diffusion_student", tmp_path / "weights")
    with torch.no_grad():
        after = diffusion_student.loss(trained, *batch, None).item()
    assert after < 0.8 * before


SCENES, _ = materialize(SyntheticScenes("val", 4))


def test_the_receiver_decodes_with_the_student_in_one_network_call(services):
    from semcom.receiver import server as receiver_server

    chain = Chain(ChannelConfig(snr_db=10.0, seed=1))
    sent = [chain.transmit(chain.encode(image, codec, frame_id=f"s{i}"))
            for i, image in enumerate(SCENES) for codec in ("semantic", "gesco")]
    student_runtime = DecoderRuntime(diffusion_decoder="student")
    assert student_runtime.diffusion_sampler.steps == 1
    calls = NetworkCalls(store.load("diffusion_student")["net"])
    try:
        student = [Chain(runtime=student_runtime).decode(frame)[0] for frame in sent]
    finally:
        calls.close()
    assert calls.count == len(sent)  # one network evaluation per frame
    five_steps = [Chain().decode(frame)[0] for frame in sent]
    # Close to the 5-step decoder's images (the README has the sweep's figures), but its own.
    assert min(psnr_db(a, b) for a, b in zip(student, five_steps)) > 18
    assert not any(np.array_equal(a, b) for a, b in zip(student, five_steps))

    served = services.start(receiver_server, decoder="student")
    try:
        address = f"127.0.0.1:{served.port}"
        with grpc.insecure_channel(address) as channel:
            stub = receiver_pb2_grpc.ReceiverStub(channel)
            reply = stub.Decode(receiver_pb2.DecodeRequest(frame=frames.to_proto(sent[0])), timeout=60)
            again = stub.Decode(receiver_pb2.DecodeRequest(frame=frames.to_proto(sent[0])), timeout=60)
            malformed = frames.to_proto(sent[0])
            del malformed.blocks[1:]
            assert_rpc_error(lambda: stub.Decode(receiver_pb2.DecodeRequest(frame=malformed), timeout=60),
                             grpc.StatusCode.INVALID_ARGUMENT, "frame.blocks")
        assert reply.image == again.image  # seeded by the frame id, as the diffusion decoder
        samples = scrape(served)
        assert metric(samples, "semcom_receiver_model_info", codec="semantic", decoder="diffusion_student") == 1
        assert metric(samples, "semcom_receiver_model_info", codec="linear_analog", decoder="") == 1
    finally:
        services.loop.run(served.stop(0))


def test_the_int8_student_decodes_close_to_fp32_and_a_changed_teacher_is_refused(services, monkeypatch):
    from semcom.receiver import server as receiver_server

    chain = Chain(ChannelConfig(snr_db=10.0, seed=2))
    sent = [chain.transmit(chain.encode(image, "semantic", frame_id=f"q{i}")) for i, image in enumerate(SCENES)]
    int8 = DecoderRuntime("int8", diffusion_decoder="student")
    assert runtime.load_part("diffusion_student", "net").card["source_sha256"] == store.card("diffusion_student")[
        "sha256"]  # the ONNX graphs made from the shipped student
    fp32_images = [Chain(runtime=DecoderRuntime(diffusion_decoder="student")).decode(frame)[0] for frame in sent]
    int8_images = [Chain(runtime=int8).decode(frame)[0] for frame in sent]
    assert min(psnr_db(a, b) for a, b in zip(fp32_images, int8_images)) > 30
    assert not any(np.array_equal(a, b) for a, b in zip(fp32_images, int8_images))  # not the fp32 network
    with pytest.raises(ValueError, match="--decoder"):
        DecoderRuntime(diffusion_decoder="teacher")
    pretend_retrained(monkeypatch, "diffusion")
    with pytest.raises(store.WeightsMissing, match="diffusion_student was made with diffusion .*semcom train "
                                                   "diffusion_student"):
        services.start(receiver_server, decoder="student")


def test_a_bad_store_flag_is_refused():
    with pytest.raises(ValueError, match="--count must be at least 1"):
        StoreConfig(count=0)
    with pytest.raises(ValueError, match="--guidance-scale"):
        StoreConfig(guidance_scale=0.5)


def test_the_student_benchmark_times_both_decoders_at_each_precision():
    from semcom.tools.evaluation.bench_student import bench_student

    report = bench_student(count=1, quality_count=0, repeats=1, precisions=("fp32", "int8"), progress=lambda _: None)
    rows = [line.split() for line in report.splitlines() if line.strip().startswith(("fp32", "int8"))]
    assert [(row[0], row[1]) for row in rows] == [("fp32", "semantic"), ("fp32", "gesco"), ("int8", "semantic"),
                                                  ("int8", "gesco")]
    for _, _, five_steps, student, ratio in rows:
        assert float(ratio.rstrip("x")) == pytest.approx(float(five_steps) / float(student), rel=0.01)
    assert "quality" not in report  # --quality-count 0: latency alone

"""The fast receiver: the shipped int8 diffusion decoder (real integer kernels,
loaded from its artifact), reproducible calibration, the precision switch, and
dynamic batching that never mixes callers' results. Speed is the benchmark's
business (`semcom bench receiver`), not these tests'."""

from __future__ import annotations

import shutil
import threading
from dataclasses import replace
from pathlib import Path

import grpc
import numpy as np
import pytest

from helpers import decode_frame, metric, needs_photos, scrape
from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common import codecs
from semcom.common.codecs.separate import FALLBACK_GREY
from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.models import runtime, store
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.models.sampling import SamplerSettings
from semcom.common.models.store import WeightsMissing
from semcom.common.quality import psnr_db
from semcom.common.serving.errors import InvalidInput, Unavailable
from semcom.common.serving.rpc import sync_channel
from semcom.common.wire import frames, tensors
from semcom.common.wire.frames import SymbolBlock
from semcom.common.wire.pb import receiver_pb2, receiver_pb2_grpc
from semcom.receiver import server as receiver_server
from semcom.receiver.pipeline import decode_frames
from semcom.tools.chain import Chain

IMAGES, _ = materialize(SyntheticScenes("val", 6))


def received(codec_id: str, index: int, snr_db: float, model: str = "awgn"):
    chain = Chain(ChannelConfig(model=model, snr_db=snr_db, seed=index, csi="perfect"))
    return chain.transmit(chain.encode(IMAGES[index], codec_id, frame_id=f"fast-{codec_id}-{index}-{snr_db:g}"))


INT8 = DecoderRuntime("int8")


def test_the_int8_decoder_runs_integer_kernels_and_stores_a_quarter_of_the_bytes(tmp_path):
    model = runtime.load_artifact(runtime.artifact_name())  # the artifact made for this CPU (test_every_cpu: the other)
    card = model.card
    assert card["source_sha256"] == store.card("diffusion")["sha256"]
    fp32_bytes = sum(p.numel() * 4 for p in store.load("diffusion")["net"].parameters())
    assert model.weight_bytes == card["weight_bytes"]["int8"]
    assert model.weight_bytes <= 0.26 * fp32_bytes
    # What ONNX Runtime actually executes after its graph optimizations: fused integer convolutions,
    # with only the convolutions the card keeps in float left as float ones.
    import onnx
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    ops = []
    for graph in (model.condition, model.step):  # the condition graph once per frame, the step graph every step
        onnxruntime.InferenceSession(str(graph.path), options, providers=["CPUExecutionProvider"])
        ops += [node.op_type for node in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]
    float_convolutions = sum(op in ("Conv", "FusedConv") for op in ops)
    assert ops.count("QLinearConv") >= 60
    assert float_convolutions == len(card["quantization"]["float_modules"])


def test_int8_decodes_a_real_frame_close_to_fp32():
    frame = received("semantic", 0, 10.0)
    reference = decode_frame(frame)
    image, again = decode_frame(frame, INT8), decode_frame(frame, INT8)
    assert image.shape == IMAGES[0].shape and image.dtype == np.uint8
    assert (image == again).all()  # deterministic per frame
    assert psnr_db(reference, image) > 28  # measured ~36.5 dB from the fp32 image
    assert abs(psnr_db(IMAGES[0], image) - psnr_db(IMAGES[0], reference)) < 1.0


@pytest.mark.parametrize("source, artifacts, load, missing, stale, fix", [
    ("diffusion", (runtime.condition_name(runtime.artifact_name()), runtime.artifact_name()), lambda folder: DecoderRuntime("int8", weights_dir=folder).noise_predictor(),
     WeightsMissing, ValueError, "semcom quantize"),
    ("latent_codec", (runtime.decoder_name("latent_codec"),),
     lambda folder: DecoderRuntime("int8", weights_dir=folder).decoder("latent_codec"),
     WeightsMissing, ValueError, "semcom quantize"),
    # The photo codec's: that codec alone is unavailable (the receiver's other codecs load and serve).
    ("photo_vae", (runtime.part_name("photo_vae", "decoder"),),
     lambda folder: DecoderRuntime("int8", weights_dir=folder).network("photo_vae", "decoder"),
     Unavailable, Unavailable, "semcom quantize --latent-diffusion-only"),
    ("diffusion_student", (runtime.condition_name(runtime.part_name("diffusion_student", "net")),
                           runtime.part_name("diffusion_student", "net")),
     lambda folder: DecoderRuntime("int8", weights_dir=folder).network("diffusion_student", "net"),
     Unavailable, Unavailable, "semcom quantize --student-only"),
])
def test_a_missing_or_stale_onnx_artifact_is_refused_with_the_fix(tmp_path, source, artifacts, load, missing, stale,
                                                                   fix):
    for name in (f"{source}.pt", f"{source}.card.json"):
        shutil.copy(store.WEIGHTS_DIR / name, tmp_path / name)
    for artifact in artifacts:  # each graph of it is needed
        with pytest.raises(missing, match=fix):
            load(tmp_path)
        for suffix in (".onnx", ".card.json"):
            shutil.copy(store.WEIGHTS_DIR / f"{artifact}{suffix}", tmp_path / f"{artifact}{suffix}")
    load(tmp_path)
    card = (tmp_path / f"{source}.card.json").read_text()
    (tmp_path / f"{source}.card.json").write_text(card.replace(store.card(source)["sha256"], "0" * 64))
    with pytest.raises(stale, match=f"run `{fix}` again"):
        load(tmp_path)


def test_weights_and_artifacts_written_anew_load_anew_without_flushing_a_cache(tmp_path):
    decoder = runtime.decoder_name("latent_codec")
    for name in ("latent_codec.pt", "latent_codec.card.json", f"{decoder}.onnx", f"{decoder}.card.json"):
        shutil.copy2(store.WEIGHTS_DIR / name, tmp_path / name)  # copy2: the shipped files' old times
    torch_parts, onnx_model = store.load("latent_codec", tmp_path), runtime.load_decoder("latent_codec", tmp_path)
    assert store.load("latent_codec", tmp_path) is torch_parts  # cached
    assert runtime.load_decoder("latent_codec", tmp_path) is onnx_model
    for card in (tmp_path / "latent_codec.card.json", tmp_path / f"{decoder}.card.json"):
        card.write_text(card.read_text())  # as training and `semcom quantize` rewrite a card with the files
    assert store.load("latent_codec", tmp_path) is not torch_parts
    assert runtime.load_decoder("latent_codec", tmp_path) is not onnx_model


@pytest.mark.parametrize("codec_id", ["deep_jscc", "semantic_map"])
def test_the_onnx_jscc_decoders_of_an_int8_receiver_decode_as_the_torch_ones(codec_id):
    frame = received(codec_id, 1, 5.0, "rayleigh")
    reference = decode_frame(frame)
    image = decode_frame(frame, INT8)
    if codec_id == "deep_jscc":
        assert psnr_db(reference, image) > 45  # float32 both, only the kernels differ
    else:
        assert (reference == image).all(-1).mean() > 0.999  # the same labels, up to a near-tie


@pytest.mark.process
def test_an_int8_receiver_process_runs_without_torch(tmp_path):
    """torch is most of a receiver process's memory; an int8 receiver has no use for it and never loads it."""
    from semcom.tools.services import start_service

    sent = [received(codec_id, 2, 10.0)
            for codec_id in ("semantic", "gesco", "deep_jscc", "semantic_map", "latent_diffusion")]
    expected = [decode_frame(frame, INT8) for frame in sent]
    service = start_service("receiver", ("--precision", "int8"), tmp_path)
    try:
        with sync_channel(service.address) as channel:
            stub = receiver_pb2_grpc.ReceiverStub(channel)
            for frame, image in zip(sent, expected):
                reply = stub.Decode(receiver_pb2.DecodeRequest(frame=frames.to_proto(frame)), timeout=120)
                assert (tensors.from_proto(reply.image, "image") == image).all(), frame.codec
            mapped = Path(f"/proc/{service.process.pid}/maps").read_text()
            assert "onnxruntime" in mapped and "libtorch" not in mapped
            # An LDPC frame loads torch and Sionna, for its own decoding only, and decodes exactly.
            ldpc_frame = received("webp_ldpc", 2, 20.0)
            reply = stub.Decode(receiver_pb2.DecodeRequest(frame=frames.to_proto(ldpc_frame)), timeout=120)
            image = tensors.from_proto(reply.image, "image")
            assert (image == decode_frame(ldpc_frame, INT8)).all() and not (image == FALLBACK_GREY).all()
            assert "libtorch" in Path(f"/proc/{service.process.pid}/maps").read_text()
    finally:
        service.process.terminate()
        service.process.wait(30)


def test_calibration_is_reproducible_under_a_seed(tmp_path):
    from semcom.tools.quantize import QuantizeConfig, quantize_decoder

    made = {}
    for run, seed in (("a", 0), ("b", 0), ("c", 1)):
        folder = tmp_path / run
        folder.mkdir()
        for name in ("diffusion.pt", "diffusion.card.json"):
            shutil.copy(store.WEIGHTS_DIR / name, folder / name)
        cards = quantize_decoder(QuantizeConfig(scenes=2, seed=seed, weights_dir=folder))
        assert set(cards) == set(runtime.ARTIFACTS)  # one per ISA family, from one calibration
        for name, card in cards.items():
            assert card["calibration"]["samples"] >= 10  # 2 scenes, 5 to 20 DDIM steps each
            assert runtime.load_artifact(name, folder).weight_bytes == card["weight_bytes"]["int8"]
        made[run] = tuple(cards[name]["sha256"] for name in runtime.ARTIFACTS)
    assert made["a"] == made["b"]  # same seed: the same artifacts, byte for byte
    assert made["a"][0] != made["c"][0] and made["a"][1] != made["c"][1]  # another seed: other scenes, SNRs
    assert made["a"][0] != made["a"][1]  # full-range and 7-bit weights


@needs_photos
def test_the_photo_codecs_calibration_is_reproducible_and_its_models_decode(tmp_path):
    from semcom.tools.quantize import QuantizeConfig
    from semcom.tools.quantize_photo import quantize_photo_codec

    made = {}
    for run, seed in (("a", 0), ("b", 0), ("c", 1)):
        folder = tmp_path / run
        folder.mkdir()
        for model in {model for model, _ in runtime.PHOTO_PARTS}:
            for suffix in (".pt", ".card.json"):
                shutil.copy(store.WEIGHTS_DIR / f"{model}{suffix}", folder / f"{model}{suffix}")
        cards = quantize_photo_codec(QuantizeConfig(seed=seed, weights_dir=folder), frames=2)
        named = {name for model, part in runtime.PHOTO_PARTS for name in runtime.part_names(model, part)}
        unets = {name for model, part in runtime.UNET_PARTS if (model, part) in runtime.PHOTO_PARTS
                 for name in runtime.part_names(model, part)}
        assert set(cards) == named | {runtime.condition_name(name) for name in unets}  # a UNet: two graphs
        for name, card in cards.items():
            if "weight_bytes" in card:  # the UNet: 2 frames x 5 steps; the VAE decoder: one call a frame
                assert card["calibration"]["samples"] == (10 if name.startswith("latent_diffusion") else 2)
                assert card["weight_bytes"]["ratio"] < 0.27  # int8 weights: a quarter, with their scales
        unet = runtime.load_part(*runtime.UNET_PARTS[0], folder)  # both graphs, checked against their cards
        assert unet.weight_bytes == cards[runtime.part_name(*runtime.UNET_PARTS[0])]["weight_bytes"]["int8"]
        made[run] = {name: card["sha256"] for name, card in cards.items()}
        assert cards["latent_diffusion_head"]["latent_scale"] == pytest.approx(
            float(store.load("latent_diffusion")["head"].latent_scale))
    assert made["a"] == made["b"]  # same seed: the same models, byte for byte
    quantized = [name for name in made["a"] if name != "latent_diffusion_head"]
    assert all(made["a"][name] != made["c"][name] for name in quantized)  # other crops, other ranges
    assert made["a"]["latent_diffusion_head"] == made["c"]["latent_diffusion_head"]  # in float: no calibration
    # What was written is what an int8 receiver with that folder decodes with.
    frame = Chain(ChannelConfig(snr_db=10.0, seed=0)).transmit(
        codecs.get("latent_diffusion").encode(IMAGES[0], 1 / 48, "calibrated"))
    image = decode_frame(frame, DecoderRuntime("int8", weights_dir=tmp_path / "a"))
    assert psnr_db(decode_frame(frame), image) > 25


def test_a_batch_decodes_each_frame_as_it_decodes_alone():
    batch = [received("semantic", i, snr) for i, snr in enumerate((0.0, 5.0, 10.0, 20.0))]
    batch.append(received("gesco", 4, 10.0))  # another codec in the same batch
    bad = replace(batch[1], frame_id="bad", blocks=[batch[1].blocks[0], SymbolBlock("latent", batch[1].blocks[1].symbols[:7])])
    results = decode_frames([*batch[:2], bad, *batch[2:]], DecoderRuntime())
    assert isinstance(results[2], InvalidInput) and "latent" in str(results[2])
    images = [result[0] for i, result in enumerate(results) if i != 2]
    alone = [decode_frame(frame) for frame in batch]
    for i, (together, solo) in enumerate(zip(images, alone)):
        assert psnr_db(solo, together) > 40, i  # its own image, up to float rounding in batched kernels
        others = [psnr_db(other, together) for j, other in enumerate(alone) if j != i]
        assert max(others) < 30, i  # and not another caller's


def test_the_receiver_batches_concurrent_calls_and_answers_each_caller_its_own(services):
    batching = services.start(receiver_server, max_batch_size=8, max_queue_delay=0.5)
    try:
        sent = [received("semantic", i, snr, model) for i, (snr, model) in
                enumerate(((0.0, "awgn"), (10.0, "awgn"), (5.0, "rayleigh"), (20.0, "rayleigh")))]
        sent.append(received("linear_analog", 4, 10.0))
        bad = replace(sent[0], frame_id="bad-frame", blocks=[SymbolBlock("semantic_map", sent[0].blocks[0].symbols[:5]),
                                                              sent[0].blocks[1]])
        requests = [receiver_pb2.DecodeRequest(frame=frames.to_proto(f)) for f in (*sent, bad)]
        replies: dict[int, object] = {}
        with sync_channel(services.address(batching)) as channel:
            stub = receiver_pb2_grpc.ReceiverStub(channel)

            def call(index: int) -> None:
                try:
                    replies[index] = stub.Decode(requests[index], timeout=120)
                except grpc.RpcError as error:
                    replies[index] = error

            threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(180)
            after = stub.Decode(requests[1], timeout=120)  # the service is still up after the bad frame
        error = replies[len(sent)]
        assert isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "semantic_map" in error.details()
        for index, frame in enumerate(sent):
            reply = replies[index]
            assert reply.frame_id == frame.frame_id
            image = tensors.from_proto(reply.image, "image")
            assert psnr_db(decode_frame(frame), image) > 40, index
        assert psnr_db(tensors.from_proto(replies[1].image, "image"), tensors.from_proto(after.image, "image")) > 40
        samples = scrape(batching)
        batches = metric(samples, "semcom_receiver_batch_size_count")
        assert metric(samples, "semcom_receiver_batch_size_sum") == len(requests) + 1
        assert batches < len(requests)  # concurrent calls were decoded together
        assert metric(samples, "semcom_receiver_queue_seconds_count") == len(requests) + 1
    finally:
        services.loop.run(batching.stop(0))


def test_an_int8_receiver_decodes_with_the_quantized_model_and_says_so(services):
    frame = received("semantic", 5, 5.0)
    int8_receiver = services.start(receiver_server, precision="int8", max_batch_size=1)
    expected = decode_frame(frame, INT8)
    try:
        assert metric(scrape(int8_receiver), "semcom_receiver_model_info", codec="semantic", precision="int8") == 1
        with sync_channel(services.address(int8_receiver)) as channel:
            reply = receiver_pb2_grpc.ReceiverStub(channel).Decode(
                receiver_pb2.DecodeRequest(frame=frames.to_proto(frame)), timeout=120)
        image = tensors.from_proto(reply.image, "image")
        assert (image == expected).all()
        assert psnr_db(decode_frame(frame), image) > 28  # the fp32 decode: close, and not identical
        assert not (decode_frame(frame) == image).all()
    finally:
        services.loop.run(int8_receiver.stop(0))


def test_a_caller_that_gives_up_while_queued_is_skipped_and_the_receiver_goes_on(services):
    patient = services.start(receiver_server, max_batch_size=8, max_queue_delay=1.0)
    try:
        frames_sent = [received("linear_analog", i, 10.0) for i in range(2)]
        requests = [receiver_pb2.DecodeRequest(frame=frames.to_proto(f)) for f in frames_sent]
        with sync_channel(services.address(patient)) as channel:
            stub = receiver_pb2_grpc.ReceiverStub(channel)
            with pytest.raises(grpc.RpcError) as gave_up:
                stub.Decode(requests[0], timeout=0.2)  # the batcher waits up to 1 s for company
            assert gave_up.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            reply = stub.Decode(requests[1], timeout=60)
        assert reply.frame_id == frames_sent[1].frame_id
        samples = scrape(patient)
        assert metric(samples, "semcom_receiver_batch_size_sum") == 1  # the abandoned frame was not decoded
        assert metric(samples, "semcom_receiver_frames_total", codec="linear_analog") == 1
    finally:
        services.loop.run(patient.stop(0))


def test_two_receivers_in_one_process_keep_their_own_precision_and_sampler(services):
    frame = received("semantic", 3, 10.0)
    ten_steps = SamplerSettings(steps=10)
    receivers = {"int8, 5 steps": services.start(receiver_server, precision="int8", max_batch_size=1),
                 "fp32, 10 steps": services.start(receiver_server, precision="fp32", sampler=ten_steps)}
    expected = {"int8, 5 steps": decode_frame(frame, INT8),
                "fp32, 10 steps": Chain(runtime=DecoderRuntime("fp32", ten_steps)).decode(frame)[0]}
    try:
        for _ in range(2):  # interleaved: neither receiver's settings leak into the other's decodes
            for name, receiver in receivers.items():
                with sync_channel(services.address(receiver)) as channel:
                    reply = receiver_pb2_grpc.ReceiverStub(channel).Decode(
                        receiver_pb2.DecodeRequest(frame=frames.to_proto(frame)), timeout=120)
                assert (tensors.from_proto(reply.image, "image") == expected[name]).all(), name
        assert not (expected["int8, 5 steps"] == expected["fp32, 10 steps"]).all()
    finally:
        for receiver in receivers.values():
            services.loop.run(receiver.stop(0))

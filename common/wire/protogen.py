"""Generates the Python gRPC stubs in common/wire/pb from the .proto files in proto/.

The stubs are committed (so an editable or wheel install needs no build step);
tests/test_proto.py regenerates them into a temporary folder and fails when
the committed ones differ. Run `make proto` after editing a .proto file.

protoc writes absolute imports (`from semcom.v1 import frame_pb2`) that follow
the proto package; they are rewritten to relative ones because the stubs live
in `semcom.common.wire.pb`, not in a `semcom.v1` package.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto"
PROTO_PACKAGE_DIR = Path("semcom") / "v1"
COMMITTED_STUBS = Path(__file__).resolve().parent / "pb"

_ABSOLUTE_IMPORT = re.compile(r"^from semcom\.v1 import (\w+)", re.MULTILINE)


def generate(out_dir: Path) -> list[Path]:
    """Writes *_pb2.py, *_pb2.pyi and *_pb2_grpc.py for every proto into out_dir."""
    from grpc_tools import protoc  # only needed by developers and tests

    protos = sorted((PROTO_ROOT / PROTO_PACKAGE_DIR).glob("*.proto"))
    if not protos:
        raise FileNotFoundError(f"no .proto files under {PROTO_ROOT / PROTO_PACKAGE_DIR}")
    with tempfile.TemporaryDirectory() as raw_dir:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{Path(protoc.__file__).parent / '_proto'}",
            f"--python_out={raw_dir}",
            f"--pyi_out={raw_dir}",
            f"--grpc_python_out={raw_dir}",
            *(str(p.relative_to(PROTO_ROOT)) for p in protos),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed: {' '.join(args)}")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for generated in sorted((Path(raw_dir) / PROTO_PACKAGE_DIR).iterdir()):
            target = out_dir / generated.name
            target.write_text(_ABSOLUTE_IMPORT.sub(r"from . import \1", generated.read_text()))
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=COMMITTED_STUBS, help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

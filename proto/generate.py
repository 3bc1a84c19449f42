"""Generate the Python gRPC code for every .proto under proto/, in place, or check it has not drifted.

Usage:
    python proto/generate.py           # regenerate the committed Python code
    python proto/generate.py --check   # exit 1 when the committed code differs from a fresh generation

The .proto files are laid out by Python package path (proto/inference_server/protocol/x.proto generates
inference_server/protocol/x_pb2.py), so the generated imports resolve as generated, with no rewriting.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    return sorted(p.relative_to(PROTO_DIR) for p in PROTO_DIR.rglob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc over every proto file into ``out_dir``; return the generated files relative to it."""
    well_known = str(resources.files("grpc_tools") / "_proto")
    files = [str(p) for p in proto_files()]
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted(p.relative_to(out_dir) for p in out_dir.rglob("*") if p.name.endswith(SUFFIXES))


def committed() -> list[Path]:
    found: list[Path] = []
    for proto in proto_files():
        for suffix in SUFFIXES:
            path = proto.parent / (proto.stem + suffix)
            if (ROOT / path).exists():
                found.append(path)
    return sorted(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when the committed code has drifted")
    check = parser.parse_args().check
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        fresh = generate(out)
        if check:
            drifted = [str(p) for p in fresh if not (ROOT / p).exists() or not filecmp.cmp(out / p, ROOT / p, False)]
            drifted += [str(p) for p in committed() if p not in fresh]
            if drifted:
                print("generated code is out of date; run `python proto/generate.py`:", *drifted, sep="\n  ")
                return 1
            print(f"generated code up to date ({len(fresh)} files)")
            return 0
        for rel in fresh:
            target = ROOT / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((out / rel).read_bytes())
            print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

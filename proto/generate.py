"""Generate the gRPC code of every .proto under proto/, for Python and the other client languages, or check it.

Usage:
    python proto/generate.py                      # regenerate the committed Python code
    python proto/generate.py --check              # exit 1 when the committed Python code differs from a fresh one
    python proto/generate.py --lang cpp,go        # generate other languages (python, cpp, go, java, ts, or all)
    python proto/generate.py --lang all --check   # check every committed language; cpp and java only generate

Where each language goes, and whether it is committed (see proto/README.md for why):

    python  inference_server/protocol/, control_plane/protocol/   committed   grpc_tools (pinned in pyproject.toml)
    go      clients/go/inference/, clients/go/control/v1/         committed   protoc + protoc-gen-go, -go-grpc
    ts      clients/node/src/generated/                           committed   protoc + ts-proto (proto/package.json)
    cpp     clients/cpp/generated/                                build only  protoc + grpc_cpp_plugin
    java    clients/java/generated/                               build only  protoc + grpc_java_plugin

The .proto files are laid out by Python package path (proto/inference_server/protocol/x.proto generates
inference_server/protocol/x_pb2.py), so the generated Python imports resolve as generated, with no rewriting.
Python needs only the virtualenv; the other languages need Debian's protoc and plugins and the npm packages of
proto/package.json, which `make toolchains` installs. Committed code must come from the pinned tool versions below,
so that a fresh generation is byte-identical on every machine.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PYTHON_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
GO_MODULE = "github.com/conduit-ml/conduit/clients/go"
TS_PROTO = PROTO_DIR / "node_modules" / ".bin" / "protoc-gen-ts_proto"
# ts-proto's options: grpc-js service clients, Node's Buffer for bytes fields, no JSON helpers (the wire is binary).
TS_PROTO_OPTIONS = "outputServices=grpc-js,env=node,esModuleInterop=true,outputJsonMethods=false,useOptionals=messages"
# The versions committed code is generated with (Debian 12's packages); another version would rewrite every file.
PINNED = {
    "protoc": ("protoc", "--version", "libprotoc 3.21.12"),
    "protoc-gen-go": ("protoc-gen-go", "--version", "protoc-gen-go v1.28.1"),
    "protoc-gen-go-grpc": ("protoc-gen-go-grpc", "--version", "protoc-gen-go-grpc 1.0"),
}


class GenerationError(Exception):
    """A tool is missing or at the wrong version, or protoc failed."""


def proto_files() -> list[Path]:
    return sorted(p.relative_to(PROTO_DIR) for p in PROTO_DIR.rglob("*.proto") if "node_modules" not in p.parts)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise GenerationError(f"{name} not found on PATH; run `make toolchains` (Debian packages, see proto/README.md)")
    return found


def _pinned(key: str) -> str:
    name, flag, expected = PINNED[key]
    path = _tool(name)
    version = subprocess.run([path, flag], capture_output=True, text=True, check=False).stdout.strip()
    if version != expected:
        raise GenerationError(f"{name}: committed code is generated with '{expected}', this machine has '{version}'")
    return path


def _protoc(args: list[str]) -> None:
    files = [str(p) for p in proto_files()]
    done = subprocess.run(
        [_tool("protoc"), f"-I{PROTO_DIR}", *args, *files], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise GenerationError(f"protoc failed:\n{done.stderr}")


def _python(out: Path) -> None:
    from importlib import resources

    from grpc_tools import protoc

    well_known = str(resources.files("grpc_tools") / "_proto")
    args = [f"-I{PROTO_DIR}", f"-I{well_known}", f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}"]
    if protoc.main(["grpc_tools.protoc", *args, *[str(p) for p in proto_files()]]) != 0:
        raise GenerationError("protoc (grpc_tools) failed")


def _cpp(out: Path) -> None:
    plugin = _tool("grpc_cpp_plugin")
    _protoc([f"--cpp_out={out}", f"--grpc_out={out}", f"--plugin=protoc-gen-grpc={plugin}"])


def _go(out: Path) -> None:
    _pinned("protoc")
    gen_go, gen_go_grpc = _pinned("protoc-gen-go"), _pinned("protoc-gen-go-grpc")
    module = f"module={GO_MODULE}"
    _protoc(
        [
            f"--plugin=protoc-gen-go={gen_go}",
            f"--plugin=protoc-gen-go-grpc={gen_go_grpc}",
            f"--go_out={out}",
            f"--go_opt={module}",
            f"--go-grpc_out={out}",
            f"--go-grpc_opt={module}",
        ]
    )


def _java(out: Path) -> None:
    plugin = _tool("grpc_java_plugin")
    _protoc([f"--java_out={out}", f"--grpc-java_out={out}", f"--plugin=protoc-gen-grpc-java={plugin}"])


def _ts(out: Path) -> None:
    _pinned("protoc")
    if not TS_PROTO.exists():
        raise GenerationError(f"{TS_PROTO.relative_to(ROOT)} missing; `make toolchains` installs it")
    _protoc([f"--plugin=protoc-gen-ts_proto={TS_PROTO}", f"--ts_proto_out={out}", f"--ts_proto_opt={TS_PROTO_OPTIONS}"])


@dataclass(frozen=True)
class Language:
    """Where a language's code goes, which of the files there are generated, and whether they are committed."""

    name: str
    out: Path
    run: Callable[[Path], None]
    pattern: str
    committed: bool

    def generated(self, base: Path) -> list[Path]:
        """The generated files under ``base`` (the output folder or a fresh temporary one), relative to it."""
        if self.name == "python":
            return sorted(
                proto.parent / (proto.stem + suffix)
                for proto in proto_files()
                for suffix in PYTHON_SUFFIXES
                if (base / proto.parent / (proto.stem + suffix)).exists()
            )
        return sorted(p.relative_to(base) for p in base.glob(self.pattern) if p.is_file())


LANGUAGES = {
    lang.name: lang
    for lang in (
        Language("python", ROOT, _python, "", committed=True),
        Language("go", ROOT / "clients" / "go", _go, "**/*.pb.go", committed=True),
        Language("ts", ROOT / "clients" / "node" / "src" / "generated", _ts, "**/*.ts", committed=True),
        Language("cpp", ROOT / "clients" / "cpp" / "generated", _cpp, "**/*.pb.*", committed=False),
        Language("java", ROOT / "clients" / "java" / "generated", _java, "**/*.java", committed=False),
    )
}


def check(lang: Language, fresh: Path) -> list[str]:
    """The committed files that differ from a fresh generation, are missing, or are left over."""
    new, old = lang.generated(fresh), lang.generated(lang.out)
    drifted = [p for p in new if p not in old or not filecmp.cmp(fresh / p, lang.out / p, shallow=False)]
    drifted += [p for p in old if p not in new]
    return [str((lang.out / p).relative_to(ROOT)) for p in drifted]


def write(lang: Language, fresh: Path) -> None:
    """Replace the language's generated files with the fresh ones; left-over files of removed protos go."""
    new = set(lang.generated(fresh))
    for stale in set(lang.generated(lang.out)) - new:
        (lang.out / stale).unlink()
    for rel in sorted(new):
        target = lang.out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or not filecmp.cmp(fresh / rel, target, shallow=False):
            target.write_bytes((fresh / rel).read_bytes())
    print(f"{lang.name}: {len(new)} files in {lang.out.relative_to(ROOT) if lang.out != ROOT else '.'}")


def parse_languages(text: str) -> list[Language]:
    names = list(LANGUAGES) if text == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in LANGUAGES]
    if unknown:
        raise SystemExit(f"unknown language(s) {', '.join(unknown)}; choose from {', '.join(LANGUAGES)} or all")
    return [LANGUAGES[n] for n in names]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when committed code has drifted")
    parser.add_argument("--lang", default="python", help="comma-separated: python, go, ts, cpp, java, or all")
    options = parser.parse_args()
    failed = False
    for lang in parse_languages(options.lang):
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp)
            try:
                lang.run(fresh)
            except GenerationError as exc:
                print(f"{lang.name}: {exc}", file=sys.stderr)
                failed = True
                continue
            if not options.check:
                write(lang, fresh)
            elif not lang.committed:
                print(f"{lang.name}: generates ({len(lang.generated(fresh))} files; built from proto/, not committed)")
            elif drifted := check(lang, fresh):
                print(f"{lang.name}: generated code is out of date; run `python proto/generate.py --lang {lang.name}`:")
                print("  " + "\n  ".join(drifted))
                failed = True
            else:
                print(f"{lang.name}: generated code up to date ({len(lang.generated(fresh))} files)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

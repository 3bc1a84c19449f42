"""Fail when proto/ is not wire-compatible with its previous committed version (`buf breaking`, rules in buf.yaml).

Usage:
    python3 proto/compat.py                                  # proto/ against its previous committed version
    python3 proto/compat.py --against-ref v0.1.0             # proto/ against the proto/ of a git revision
    python3 proto/compat.py --proto DIR --against DIR        # any two folders of .proto files

The previous committed version is HEAD's proto/ when the working tree changes a .proto file, and otherwise the
proto/ from before the last commit that changed one: so a change is checked before it is committed, and again in
CI once it is. A clone without that history (shallow, or proto/ new in its first commit) has nothing to compare
against: the check says so and passes. buf comes from proto/node_modules (`make toolchains`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
BUF = PROTO_DIR / "node_modules" / ".bin" / "buf"
CONFIG = PROTO_DIR / "buf.yaml"
PROTOS = ":(glob)proto/**/*.proto"


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)


def _describe(ref: str) -> str:
    """``abc1234 (subject)`` of a revision, the subject cut short."""
    found = _git("log", "-1", "--format=%h%x00%s", ref).stdout.strip()
    if not found:
        return ref
    sha, subject = found.split("\0", 1)
    return f"{sha} ({subject[:57] + '...' if len(subject) > 60 else subject})"


def previous_version() -> tuple[str | None, str]:
    """The git revision whose proto/ is the baseline, or None; and a sentence saying which and why."""
    if _git("rev-parse", "--is-inside-work-tree").returncode != 0:
        return None, "not a git work tree: no previous version of proto/ to compare against"
    if _git("status", "--porcelain", "--", PROTOS).stdout.strip():
        return "HEAD", f"uncommitted changes to proto/ against HEAD {_describe('HEAD')}"
    last = _git("log", "-1", "--format=%H", "--", PROTOS).stdout.strip()
    if not last:
        return None, "no commit in this clone's history changes proto/: nothing to compare against"
    parent = _git("rev-parse", "--verify", "--quiet", f"{last}^").stdout.strip()
    shallow = _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true"
    if not parent:
        why = "this clone is shallow" if shallow else "it is the first commit"
        return None, f"the last change to proto/, {_describe(last)}, has no parent here ({why}): nothing compared"
    return parent, f"the last change to proto/, {_describe(last)}, against its parent {_describe(parent)}"


def export(ref: str, into: Path) -> Path | None:
    """Write the .proto files of ``ref``'s proto/ under ``into``; None when that revision has none."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "--", PROTOS], capture_output=True, check=False
    )
    if archive.returncode != 0:
        return None
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / "proto"


def breaking(proto: Path, against: Path) -> int:
    """Run `buf breaking`; its findings go to stdout, one per line, naming file, message and field."""
    if not BUF.exists():
        print(f"{BUF.relative_to(ROOT)} missing; `make toolchains` installs it", file=sys.stderr)
        return 2
    args = [str(BUF), "breaking", str(proto), "--against", str(against), "--config", str(CONFIG)]
    done = subprocess.run([*args, "--error-format", "text"], capture_output=True, text=True, check=False)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proto", type=Path, default=PROTO_DIR, help="the .proto folder to check (default proto/)")
    parser.add_argument("--against", type=Path, help="a folder holding the previous version")
    parser.add_argument("--against-ref", help="a git revision whose proto/ is the previous version")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if options.against is not None:
            against: Path | None = options.against
            what = f"{options.proto} against {options.against}"
        else:
            if options.against_ref is not None:
                ref, what = options.against_ref, f"proto/ against {_describe(options.against_ref)}"
            else:
                ref, what = previous_version()
            against = export(ref, Path(tmp)) if ref is not None else None
            if ref is not None and against is None:
                if options.against_ref is not None:
                    print(f"proto compatibility: {options.against_ref} has no proto/ here", file=sys.stderr)
                    return 2
                what += f"; {ref} has no proto/: nothing compared"
        if against is None:
            print(f"proto compatibility: {what}")
            return 0
        code = breaking(options.proto, against)
        verdict = "compatible" if code == 0 else "NOT wire-compatible (see proto/README.md: compatibility rules)"
        print(f"proto compatibility: {what}: {verdict}")
        return code


if __name__ == "__main__":
    sys.exit(main())

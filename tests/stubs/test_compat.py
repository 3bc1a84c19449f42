"""proto/compat.py (`buf breaking` with proto/buf.yaml's rules) on copies of proto/ changed the way the rules in
proto/README.md allow or forbid: a forbidden change fails the check, and its message names the field."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.stubs.conftest import ROOT

PROTO = ROOT / "proto"
GRPC_SERVICE = "inference_server/protocol/grpc_service.proto"
CONTROL_PLANE = "control_plane/protocol/control_plane.proto"

Edit = Callable[[str, str, str], None]


def compat(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(PROTO / "compat.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def changed(tmp_path: Path) -> tuple[Path, Edit]:
    """A copy of proto/'s .proto files, and a function that replaces one exact text in one of them."""
    copy = tmp_path / "proto"
    for source in PROTO.rglob("*.proto"):
        if "node_modules" not in source.parts:
            target = copy / source.relative_to(PROTO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)

    def edit(file: str, old: str, new: str) -> None:
        path = copy / file
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} is not in {file} exactly once"
        path.write_text(text.replace(old, new))

    return copy, edit


def check(copy: Path) -> subprocess.CompletedProcess[str]:
    return compat("--proto", str(copy), "--against", str(PROTO))


def test_proto_is_compatible_with_its_previous_committed_version() -> None:
    done = compat()
    assert done.returncode == 0, done.stdout + done.stderr
    # Says what it compared against: a revision, or why there was none.
    assert done.stdout.startswith("proto compatibility: "), done.stdout
    assert "against" in done.stdout or "nothing" in done.stdout


def test_an_unchanged_copy_passes(changed: tuple[Path, Edit]) -> None:
    copy, _ = changed
    done = check(copy)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(": compatible")


def test_a_renumbered_field_fails_and_is_named(changed: tuple[Path, Edit]) -> None:
    copy, edit = changed
    edit(GRPC_SERVICE, "repeated bytes raw_input_contents = 7;", "repeated bytes raw_input_contents = 8;")
    done = check(copy)
    assert done.returncode != 0, done.stdout
    assert 'field "7" with name "raw_input_contents" on message "ModelInferRequest"' in done.stdout
    assert "NOT wire-compatible" in done.stdout


def test_a_retyped_field_fails(changed: tuple[Path, Edit]) -> None:
    copy, edit = changed
    edit(CONTROL_PLANE, "  int64 canary_version = 6;  // 0: no canary", "  string canary_version = 6;")
    done = check(copy)
    assert done.returncode != 0, done.stdout
    assert '"canary_version"' in done.stdout and '"Deployment"' in done.stdout


def test_a_field_removed_without_reservation_fails(changed: tuple[Path, Edit]) -> None:
    copy, edit = changed
    edit(CONTROL_PLANE, "  repeated string aliases = 14;\n", "")
    done = check(copy)
    assert done.returncode != 0, done.stdout
    assert 'field "14" with name "aliases" on message "ModelVersion"' in done.stdout


def test_a_field_removed_with_its_number_and_name_reserved_passes(changed: tuple[Path, Edit]) -> None:
    copy, edit = changed
    edit(CONTROL_PLANE, "  repeated string aliases = 14;\n", '  reserved 14;\n  reserved "aliases";\n')
    done = check(copy)
    assert done.returncode == 0, done.stdout + done.stderr


def test_new_fields_messages_and_rpcs_pass(changed: tuple[Path, Edit]) -> None:
    copy, edit = changed
    edit(CONTROL_PLANE, "  repeated string aliases = 14;\n", "  repeated string aliases = 14;\n  string owner = 99;\n")
    edit(
        CONTROL_PLANE,
        "  rpc WhoAmI(WhoAmIRequest) returns (User);\n",
        "  rpc WhoAmI(WhoAmIRequest) returns (User);\n  rpc Ping(PingRequest) returns (PingRequest);\n",
    )
    edit(CONTROL_PLANE, "message WhoAmIRequest {\n}\n", "message WhoAmIRequest {\n}\n\nmessage PingRequest {\n}\n")
    done = check(copy)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_removed_rpc_fails(changed: tuple[Path, Edit]) -> None:
    copy, edit = changed
    edit(CONTROL_PLANE, "  rpc WhoAmI(WhoAmIRequest) returns (User);\n", "")
    done = check(copy)
    assert done.returncode != 0, done.stdout
    assert '"WhoAmI"' in done.stdout


def test_a_renamed_field_fails(changed: tuple[Path, Edit]) -> None:
    copy, edit = changed
    # Same number and type: the binary wire is unchanged, but JSON clients and generated accessors break.
    edit(
        GRPC_SERVICE,
        "  string model_name = 1;\n  string model_version = 2;\n  string id = 3;\n  map<string, "
        "InferParameter> parameters = 4;\n  repeated ModelInferRequest.InferInputTensor inputs = 5;",
        "  string model = 1;\n  string model_version = 2;\n  string id = 3;\n  map<string, "
        "InferParameter> parameters = 4;\n  repeated ModelInferRequest.InferInputTensor inputs = 5;",
    )
    done = check(copy)
    assert done.returncode != 0, done.stdout
    assert '"model_name"' in done.stdout


def test_a_change_in_the_working_tree_is_checked_against_head(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    (clone / "proto" / "node_modules").symlink_to(PROTO / "node_modules")
    proto = clone / "proto" / GRPC_SERVICE
    proto.write_text(proto.read_text().replace("raw_input_contents = 7;", "raw_input_contents = 8;"))
    done = subprocess.run(
        [sys.executable, str(clone / "proto" / "compat.py")], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0, done.stdout
    assert "uncommitted changes to proto/ against HEAD" in done.stdout
    assert '"raw_input_contents"' in done.stdout


def test_a_shallow_clone_says_it_compared_nothing(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    url = ROOT.as_uri()
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", url, str(clone)], check=True, timeout=120)
    (clone / "proto" / "node_modules").symlink_to(PROTO / "node_modules")
    done = subprocess.run(
        [sys.executable, str(clone / "proto" / "compat.py")], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing compared" in done.stdout or "nothing to compare" in done.stdout

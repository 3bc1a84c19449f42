"""``conduit tokens add``: a caller token for a repository-mode inference server's ``--tokens-file``.

The token is printed once; the file keeps only its sha256, with a name and a role.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path

from contract.tokens import hash_token, new_token

__all__ = ["add_token_commands", "run_token_command"]

ROLES = ("viewer", "maintainer", "admin")


def add_token_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "tokens",
        help="make caller tokens for `conduit serve --tokens-file` (repository mode)",
        description="Caller tokens of a repository-mode inference server. A server following a control plane "
        "authenticates its callers as the control plane's users instead (`conduit users`).",
    )
    actions = p.add_subparsers(dest="tokens_command", required=True)
    add = actions.add_parser(
        "add",
        help="make a token, append its sha256 to FILE and print the token once",
        description="Make a random token, append its sha256 with NAME and ROLE to the TOML tokens FILE (created "
        "0600 if missing) and print the token, which is stored nowhere. A running server re-reads the file within "
        "seconds. viewer and maintainer may infer and read metadata; admin may also load and unload models "
        "(with --model-control explicit).",
    )
    add.add_argument("file", type=Path, metavar="FILE")
    add.add_argument("--name", required=True, help="who holds the token (shown in refusals)")
    add.add_argument("--role", required=True, choices=ROLES)


def run_token_command(args: argparse.Namespace) -> int:
    path: Path = args.file
    name: str = args.name
    if not name or any(c in name for c in '"\\\n\r'):
        print("conduit tokens: --name must be non-empty, without quotes, backslashes or line breaks", file=sys.stderr)
        return 1
    try:
        existing = path.read_text() if path.exists() else ""
        tomllib.loads(existing)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        print(f"conduit tokens: {path}: not a readable TOML file ({exc})", file=sys.stderr)
        return 1
    token = new_token()
    entry = f'[[tokens]]\nname = "{name}"\nrole = "{args.role}"\nsha256 = "{hash_token(token)}"\n'
    separator = "\n" if existing and not existing.endswith("\n\n") else ""
    if existing and not existing.endswith("\n"):
        separator = "\n\n"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "a") as out:
            out.write(separator + entry)
    except OSError as exc:
        print(f"conduit tokens: cannot write {path}: {exc.strerror}", file=sys.stderr)
        return 1
    print(token)
    return 0

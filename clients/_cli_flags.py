"""Flags with a ``CONDUIT_*`` fallback: an empty value (``--token ""``, ``--ca ""``) is no value, so the variable,
then the default, applies, as if the flag were not given. A script that passes ``--token "$TOKEN"`` with ``TOKEN``
unset gets the environment's token rather than an empty one."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

__all__ = ["CONNECTION_FLAGS", "path_flag", "unset_empty"]

CONNECTION_FLAGS = ("control_plane", "token", "ca")
"""The flags of the commands that call a control plane or a server which fall back to ``CONDUIT_CONTROL_PLANE``,
``CONDUIT_TOKEN`` and ``CONDUIT_CONTROL_PLANE_CA``."""


def path_flag(text: str) -> Path | str:
    """The argparse type of a path flag: ``Path(text)``, or ``""`` for ``unset_empty`` to drop (``Path("")`` would
    be the working directory)."""
    return Path(text) if text else ""


def unset_empty(args: argparse.Namespace, names: Iterable[str]) -> None:
    """The flags ``names`` that were given empty become None, which the commands read as not given (those whose
    flags default to ``argparse.SUPPRESS`` drop them before their settings read the environment)."""
    for name in list(names):
        value = getattr(args, name, None)
        if isinstance(value, str) and not value.strip():
            setattr(args, name, None)

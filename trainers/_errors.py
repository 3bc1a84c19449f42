"""The trainers' errors: members of Conduit's one error family, so every transport reports them the same way."""

from __future__ import annotations

from contract.errors import ConduitError, ErrorCode

__all__ = ["DatasetError", "SpecError", "TrainingError", "first_line"]


class DatasetError(ConduitError, ValueError):
    """Data that cannot be read or used: unreadable file, empty data, a missing column, types that do not mix."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_ARGUMENT, message)


class SpecError(ConduitError, ValueError):
    """A training spec that is malformed or does not fit its data; the message names the offending item."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_ARGUMENT, message)


class TrainingError(ConduitError, ValueError):
    """A run that could not produce a model although its spec and data are valid (e.g. every search trial failed)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.FAILED_PRECONDITION, message)


def first_line(error: BaseException) -> str:
    """The first line of an exception's text (libraries add hints and tracebacks below it)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

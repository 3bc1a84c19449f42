"""Models, their versions and what describes them: signatures, lineage, attachments, aliases."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from contract.errors import ConduitError, ErrorCode

__all__ = [
    "AliasChange",
    "Attachment",
    "AttachmentContent",
    "Lineage",
    "Model",
    "ModelVersion",
    "NewVersion",
    "TensorSignature",
    "VersionRef",
]


_REF = re.compile(r"^(?P<model>[^@:]+)(?:@(?P<alias>[^@:]+)|:(?P<version>\d+))?$")


@dataclass(frozen=True, slots=True)
class VersionRef:
    """A version by number, by alias, or (neither) the model's latest."""

    model: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> VersionRef:
        """``NAME`` (latest version), ``NAME@ALIAS`` or ``NAME:VERSION``.

        Raises:
            ConduitError: INVALID_ARGUMENT for anything else.
        """
        match = _REF.match(text)
        if match is None:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{text!r}: expected NAME, NAME@ALIAS or NAME:VERSION")
        if match["alias"]:
            return cls(match["model"], alias=match["alias"])
        if match["version"]:
            return cls(match["model"], version=int(match["version"]))
        return cls(match["model"])

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{self.model}@{self.alias}"
        return self.model if self.version is None else f"{self.model}:{self.version}"


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    description: str
    archived: bool
    created_at: datetime
    created_by: str
    latest_version: int
    """0 while the model has no version."""
    aliases: Mapping[str, int] = field(default_factory=dict)
    """alias -> version"""


@dataclass(frozen=True, slots=True)
class TensorSignature:
    """One input or output of an ONNX graph, in Open Inference Protocol terms (-1: variable dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    @property
    def batched(self) -> bool:
        """Whether the first dimension is variable, as a batch dimension is."""
        return bool(self.shape) and self.shape[0] == -1


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a version came from."""

    dataset: str = ""
    dataset_version: str = ""
    training_spec: str = ""
    code_version: str = ""
    parent_version: int = 0


@dataclass(frozen=True, slots=True)
class Attachment:
    """A document stored with a version (evaluation data, training spec, log); its content is an artifact."""

    name: str
    media_type: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class AttachmentContent:
    """One attachment of a version, with its content and the version number its reference resolved to."""

    version: int
    attachment: Attachment
    content: bytes


@dataclass(frozen=True, slots=True)
class NewVersion:
    """A version to register; its artifact (and its attachments' contents) are already stored under their digests."""

    model: str
    sha256: str
    size_bytes: int
    inputs: tuple[TensorSignature, ...]
    outputs: tuple[TensorSignature, ...]
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    lineage: Lineage = field(default_factory=Lineage)
    description: str = ""
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelVersion:
    model: str
    version: int
    sha256: str
    size_bytes: int
    inputs: tuple[TensorSignature, ...]
    outputs: tuple[TensorSignature, ...]
    metrics: Mapping[str, float]
    params: Mapping[str, str]
    tags: Mapping[str, str]
    lineage: Lineage
    description: str
    created_at: datetime
    created_by: str
    aliases: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    """By name."""


@dataclass(frozen=True, slots=True)
class AliasChange:
    model: str
    alias: str
    version: int
    previous_version: int | None
    """None: the alias is new."""

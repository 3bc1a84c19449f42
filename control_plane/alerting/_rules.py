"""An alert rule as ``conduit alerts add RULE --model NAME[@ALIAS] --when EXPR --notify CHANNEL`` declares it."""

from __future__ import annotations

from dataclasses import dataclass

from contract.errors import ConduitError, ErrorCode
from control_plane.alerting._expressions import Channel, Condition, parse_channel, parse_condition
from control_plane.store import check_alias, check_name

__all__ = ["AlertRule", "parse_model_target"]


def parse_model_target(text: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME@ALIAS`` as ``(model, alias or None)``.

    Raises:
        ConduitError: INVALID_ARGUMENT for a version number (rules follow a model or an alias, never one version,
            so that a new deployment stays watched) or a bad name.
    """
    model, sep, alias = text.partition("@")
    if ":" in model:
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT, f"{text!r}: a rule watches NAME or NAME@ALIAS, not a pinned version"
        )
    check_name("model", model)
    if not sep:
        return model, None
    return model, check_alias(alias)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A named condition on a model's versions and where to tell when it changes.

    ``alias`` None watches every version of the model that reports metrics; an alias watches the versions it points
    to (the wiring resolves it at each evaluation).
    """

    name: str
    model: str
    alias: str | None
    condition: Condition
    channel: Channel

    @classmethod
    def parse(cls, name: str, *, model: str, when: str, notify: str) -> AlertRule:
        """The rule of ``conduit alerts add NAME --model MODEL --when WHEN --notify NOTIFY``.

        Raises:
            ConduitError: INVALID_ARGUMENT naming the argument at fault.
        """
        model_name, alias = parse_model_target(model)
        return cls(check_name("alert rule", name), model_name, alias, parse_condition(when), parse_channel(notify))

    @property
    def target(self) -> str:
        """``NAME`` or ``NAME@ALIAS``, as written on the command line."""
        return self.model if self.alias is None else f"{self.model}@{self.alias}"

"""What a notification says, built from a rule, an alert and its event; the same fields on every channel."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from control_plane.alerting._rules import AlertRule
from control_plane.alerting._state import AlertEvent, AlertKey

__all__ = ["Notification"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert event, ready to send.

    ``value`` and ``threshold`` are in the condition's unit: milliseconds for ``p99_ms``, a fraction for
    ``error_rate`` (0.01 is 1%), PSI for ``drift``, seconds for ``no_traffic``; None where there is none.
    """

    rule: str
    model: str
    alias: str | None
    version: str
    state: str
    """``firing`` or ``resolved``."""
    condition: str
    metric: str
    value: float | None
    threshold: float | None
    detail: str
    started_at: datetime
    at: datetime
    repeat: bool
    acknowledged_by: str | None
    silenced_until: datetime | None

    @classmethod
    def of(cls, rule: AlertRule, key: AlertKey, event: AlertEvent) -> Notification:
        condition = rule.condition
        value = event.value if event.value is not None and math.isfinite(event.value) else None
        return cls(
            rule=rule.name,
            model=key.model,
            alias=rule.alias,
            version=key.version,
            state=event.phase.value,
            condition=str(condition),
            metric=condition.metric,
            value=value,
            threshold=condition.threshold,
            detail=event.detail,
            started_at=event.started_at,
            at=event.at,
            repeat=event.repeat,
            acknowledged_by=event.acknowledged_by,
            silenced_until=event.silenced_until,
        )

    @property
    def summary(self) -> str:
        """One line: ``[FIRING] latency on fraud@production version 3: p99_ms > 50 for 2m (p99_ms 72.4 ms)``."""
        target = self.model if self.alias is None else f"{self.model}@{self.alias}"
        detail = f" ({self.detail})" if self.detail else ""
        return f"[{self.state.upper()}] {self.rule} on {target} version {self.version}: {self.condition}{detail}"

    def to_json(self) -> dict[str, Any]:
        """The webhook body: every field, times in ISO 8601 UTC."""
        return {
            "rule": self.rule,
            "model": self.model,
            "alias": self.alias,
            "version": self.version,
            "state": self.state,
            "condition": self.condition,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "detail": self.detail,
            "started_at": self.started_at.isoformat(),
            "at": self.at.isoformat(),
            "repeat": self.repeat,
            "acknowledged_by": self.acknowledged_by,
            "silenced_until": None if self.silenced_until is None else self.silenced_until.isoformat(),
        }

    def to_text(self) -> str:
        """The email body: the summary, then one ``field: value`` line per field."""
        lines = [self.summary, ""]
        for name, value in self.to_json().items():
            if value is not None:
                lines.append(f"{name}: {value}")
        return "\n".join(lines) + "\n"

"""What channels share: the error a send attempt raises, the retry schedule, and the record of a delivery."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Delivery", "DeliveryError", "DeliveryOutcome", "RetryPolicy"]


class DeliveryError(Exception):
    """One send attempt failed; ``retryable`` when another attempt may succeed (the receiver was down or busy)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Up to ``attempts`` tries, waiting ``base_delay_s`` before the second and twice as long before each next one,
    at most ``max_delay_s``. No jitter: one control plane sends few notifications to any receiver."""

    attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy needs at least one attempt")

    def delay_s(self, failed_attempts: int) -> float:
        """The wait after the ``failed_attempts``-th failure (1 for the first)."""
        return min(self.max_delay_s, self.base_delay_s * 2.0 ** (failed_attempts - 1))


class DeliveryOutcome(enum.Enum):
    DELIVERED = "delivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    """Recorded but not sent: the alert was silenced, or a resolve of a firing nobody was told of."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a notification fared on its channel, for the alert's history."""

    channel: str
    outcome: DeliveryOutcome
    attempts: int
    at: datetime
    error: str = ""
    """The last attempt's error, when it failed."""

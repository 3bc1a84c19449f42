"""The ``--when`` and ``--notify`` grammar of ``conduit alerts add``, parsed into typed values.

Conditions::

    p99_ms > 50 [for 2m]         99th percentile latency, in milliseconds, of each one-minute window
    error_rate > 1% [for 1m]     failed / all requests of each window, written as a percentage
    drift > 0.2 [over 10m]       some feature drifted, with a PSI above 0.2, over the rows of the last 10 minutes
    drift(all) > 0.2 [over 10m]  every feature did (``drift(any)`` is the default spelling)
    no_traffic for 5m            no request answered for five minutes
    not_ready [for 30s]          the servers report the version not ready

Durations are a whole number of ``s``, ``m``, ``h`` or ``d``. ``str()`` of a parsed value is its canonical text, and
parsing that text gives back an equal value, so the registry can store rules as the text a person wrote.

Every condition has a ``window_s``: the span of monitoring data one evaluation judges, shown with the rule and used
both to fire it and to resolve it. ``p99_ms`` and ``error_rate``: the one-minute windows of the last ``for`` duration
(one minute without ``for``); a window with no request in it has no latency and no error rate, so the alert
resolves. ``drift``: the rows received over its ``over`` duration (``DRIFT_WINDOW_S`` by default, printed in the
canonical text so that a stored rule never depends on a default that may change). ``no_traffic``: its ``for``
duration. ``not_ready``: the servers' latest reports, held for its ``for`` duration.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from email.utils import parseaddr
from urllib.parse import urlsplit

from contract.errors import ConduitError, ErrorCode
from contract.outbound import redacted_url

__all__ = [
    "DRIFT_WINDOW_S",
    "Channel",
    "Condition",
    "DriftAbove",
    "DriftScope",
    "Email",
    "ErrorRateAbove",
    "Log",
    "NoTraffic",
    "NotReady",
    "P99Above",
    "Webhook",
    "describe_window",
    "format_duration",
    "parse_channel",
    "parse_condition",
    "parse_duration",
]

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+)([smhd])")
# Longer operators first, so that '>=' is one (refused) token rather than '>' followed by '='.
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?[a-z%]*)"  # 50, 12.5ms, 1%, 2m
    r"|(?P<op>[<>=!]=?)"
    r"|(?P<word>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<other>\S))"
)
_EXAMPLES = (
    "p99_ms > 50 for 2m, error_rate > 1% for 1m, drift > 0.2 over 10m, drift(all) > 0.2, no_traffic for 5m or not_ready"
)
MAX_DURATION_S = 7 * 86400
MINUTE_S = 60
DRIFT_WINDOW_S = 600
"""The ``over`` window of a drift rule that names none: ten minutes of rows, enough for a verdict at a few requests a
second, and short enough that a drift rule resolves within minutes of clean traffic."""


def _invalid(message: str) -> ConduitError:
    return ConduitError(ErrorCode.INVALID_ARGUMENT, message)


def parse_duration(text: str) -> int:
    """``30s``, ``2m``, ``1h`` or ``1d`` as whole seconds (up to seven days).

    Raises:
        ConduitError: INVALID_ARGUMENT naming the text.
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise _invalid(f"{text!r} is not a duration: write a whole number of s, m, h or d, like 30s, 2m or 1h")
    seconds = int(match[1]) * _UNITS[match[2]]
    if seconds > MAX_DURATION_S:
        raise _invalid(f"duration {text!r} is longer than seven days")
    return seconds


def format_duration(seconds: int) -> str:
    """The canonical text of a duration: the largest unit that divides it (``120`` → ``2m``, ``90`` → ``90s``)."""
    for unit, size in _UNITS.items():
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _format_number(value: float, scale: int = 1) -> str:
    # Through the shortest repr and Decimal: 0.07 * 100 must print as 7, not 7.000000000000001.
    return format((Decimal(repr(value)) * scale).normalize(), "f")


def _for_suffix(seconds: int) -> str:
    return f" for {format_duration(seconds)}" if seconds else ""


@dataclass(frozen=True, slots=True)
class P99Above:
    """The 99th percentile latency of a one-minute window is above ``ms``, in every window for ``for_s`` seconds."""

    ms: float
    for_s: int = 0

    @property
    def metric(self) -> str:
        return "p99_ms"

    @property
    def threshold(self) -> float:
        return self.ms

    @property
    def window_s(self) -> int:
        return max(self.for_s, MINUTE_S)

    def __str__(self) -> str:
        return f"p99_ms > {_format_number(self.ms)}{_for_suffix(self.for_s)}"


@dataclass(frozen=True, slots=True)
class ErrorRateAbove:
    """Failed requests over all requests of a window is above ``fraction`` (0.01 is 1%), for ``for_s`` seconds."""

    fraction: float
    for_s: int = 0

    @property
    def metric(self) -> str:
        return "error_rate"

    @property
    def threshold(self) -> float:
        return self.fraction

    @property
    def window_s(self) -> int:
        return max(self.for_s, MINUTE_S)

    def __str__(self) -> str:
        return f"error_rate > {_format_number(self.fraction, 100)}%{_for_suffix(self.for_s)}"


class DriftScope(enum.Enum):
    """Whether one drifted feature is enough (``any``) or every feature must have drifted (``all``)."""

    ANY = "any"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class DriftAbove:
    """Any (or all) features drifted over the rows of the last ``window_s`` seconds, with a population stability
    index against the training baseline above ``threshold``."""

    threshold: float
    scope: DriftScope = DriftScope.ANY
    window_s: int = DRIFT_WINDOW_S

    @property
    def metric(self) -> str:
        return "drift"

    @property
    def for_s(self) -> int:
        return 0

    def __str__(self) -> str:
        name = "drift" if self.scope is DriftScope.ANY else f"drift({self.scope.value})"
        return f"{name} > {_format_number(self.threshold)} over {format_duration(self.window_s)}"


@dataclass(frozen=True, slots=True)
class NoTraffic:
    """No request was answered for ``for_s`` seconds."""

    for_s: int

    @property
    def metric(self) -> str:
        return "no_traffic"

    @property
    def threshold(self) -> float:
        return float(self.for_s)

    @property
    def window_s(self) -> int:
        return self.for_s

    def __str__(self) -> str:
        return f"no_traffic for {format_duration(self.for_s)}"


@dataclass(frozen=True, slots=True)
class NotReady:
    """The servers report the version not ready, for ``for_s`` seconds (0: at once)."""

    for_s: int = 0

    @property
    def metric(self) -> str:
        return "not_ready"

    @property
    def threshold(self) -> float | None:
        return None

    @property
    def window_s(self) -> int:
        return self.for_s

    def __str__(self) -> str:
        return f"not_ready{_for_suffix(self.for_s)}"


Condition = P99Above | ErrorRateAbove | DriftAbove | NoTraffic | NotReady
"""What an alert rule watches. Every kind has ``metric``, ``threshold``, ``for_s`` and ``window_s``, and prints
canonically."""


def describe_window(condition: Condition) -> str:
    """The window of ``condition`` as listings show it: ``5m``; ``latest`` for the servers' latest readiness."""
    return format_duration(condition.window_s) if condition.window_s else "latest"


class _Tokens:
    """The tokens of one expression, consumed left to right, with errors that quote the whole expression."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[tuple[str, str]] = []
        for match in _TOKEN.finditer(text.strip()):
            kind = match.lastgroup
            assert kind is not None
            self.items.append((kind, match[kind]))
        self.position = 0

    def error(self, message: str) -> ConduitError:
        return _invalid(f"condition {self.text!r}: {message}")

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.position] if self.position < len(self.items) else None

    def take(self) -> tuple[str, str] | None:
        token = self.peek()
        if token is not None:
            self.position += 1
        return token

    def expect_greater(self, metric: str) -> None:
        token = self.take()
        if token is None:
            raise self.error(f"{metric} needs a comparison, like {metric} > …")
        if token != ("op", ">"):
            raise self.error(f"only '>' is supported after {metric}, not {token[1]!r}")

    def number(self, metric: str, units: tuple[str, ...]) -> Decimal:
        token = self.take()
        if token is None or token[0] != "number":
            found = "nothing" if token is None else repr(token[1])
            raise self.error(f"{metric} > needs a number, found {found}")
        match = re.fullmatch(r"([0-9.eE+-]+?)([a-z%]*)", token[1])
        assert match is not None
        number, unit = match[1], match[2]
        if unit not in units:
            allowed = " or ".join("a plain number" if not u else f"a number with {u!r}" for u in units)
            raise self.error(f"{token[1]!r}: {metric} takes {allowed}")
        try:
            value = Decimal(number)
        except InvalidOperation:
            raise self.error(f"{token[1]!r} is not a number") from None
        if not math.isfinite(float(value)):
            raise self.error(f"{token[1]!r} is too large")
        return value

    def window(self, metric: str, *, required: bool) -> int:
        token = self.peek()
        if token is None:
            if required:
                raise self.error(f"{metric} needs a window, like {metric} for 5m")
            return 0
        if token != ("word", "for"):
            raise self.error(f"expected 'for DURATION' or the end after {metric}, found {token[1]!r}")
        self.take()
        duration = self.take()
        if duration is None:
            raise self.error("'for' needs a duration, like 2m")
        try:
            seconds = parse_duration(duration[1])
        except ConduitError as exc:
            raise self.error(exc.message) from None
        if seconds == 0 and required:
            raise self.error(f"{metric} needs a window longer than 0s")
        return seconds

    def over(self, metric: str) -> int:
        """``over DURATION``, or ``DRIFT_WINDOW_S`` when the expression ends here."""
        if self.peek() is None:
            return DRIFT_WINDOW_S
        token = self.take()
        if token != ("word", "over"):
            assert token is not None
            raise self.error(f"expected 'over DURATION' or the end after {metric}, found {token[1]!r}")
        duration = self.take()
        if duration is None:
            raise self.error("'over' needs a duration, like 10m")
        try:
            seconds = parse_duration(duration[1])
        except ConduitError as exc:
            raise self.error(exc.message) from None
        if seconds < MINUTE_S:
            raise self.error(f"{metric} needs a window of at least 1m: its rows are counted per minute")
        return seconds

    def end(self) -> None:
        token = self.peek()
        if token is not None:
            raise self.error(f"unexpected {token[1]!r} after the end of the condition")


def _drift_scope(tokens: _Tokens) -> DriftScope:
    if tokens.peek() != ("other", "("):
        return DriftScope.ANY
    tokens.take()
    word, close = tokens.take(), tokens.take()
    scopes = {scope.value for scope in DriftScope}
    if word is None or word[1] not in scopes or close != ("other", ")"):
        raise tokens.error("write drift(any) or drift(all)")
    return DriftScope(word[1])


def parse_condition(text: str) -> Condition:
    """The condition of ``--when TEXT``.

    Raises:
        ConduitError: INVALID_ARGUMENT naming what is wrong in the text.
    """
    tokens = _Tokens(text)
    first = tokens.take()
    if first is None:
        raise _invalid(f"empty condition: write one of {_EXAMPLES}")
    if first[0] != "word" or first[1] not in ("p99_ms", "error_rate", "drift", "no_traffic", "not_ready"):
        raise tokens.error(f"unknown metric {first[1]!r}: write one of {_EXAMPLES}")
    metric = first[1]
    condition: Condition
    if metric == "p99_ms":
        tokens.expect_greater(metric)
        ms = tokens.number(metric, ("", "ms"))
        if float(ms) <= 0:
            raise tokens.error("p99_ms must be compared with a positive number of milliseconds")
        condition = P99Above(float(ms), tokens.window(metric, required=False))
    elif metric == "error_rate":
        tokens.expect_greater(metric)
        percent = tokens.number(metric, ("%",))
        if not 0 <= percent < 100:
            raise tokens.error("error_rate must be compared with a percentage from 0% to below 100%")
        # Divided as a Decimal, 7% becomes the float nearest 0.07, whose str() gives back '7%'.
        condition = ErrorRateAbove(float(percent / 100), tokens.window(metric, required=False))
    elif metric == "drift":
        scope = _drift_scope(tokens)
        tokens.expect_greater(metric)
        threshold = tokens.number(metric, ("",))
        if float(threshold) <= 0:
            raise tokens.error("drift must be compared with a positive PSI, like drift > 0.2")
        if tokens.peek() == ("word", "for"):
            raise tokens.error("drift takes no 'for': write 'over 10m' for the period its rows are taken from")
        condition = DriftAbove(float(threshold), scope, tokens.over(metric))
    elif metric == "no_traffic":
        condition = NoTraffic(tokens.window(metric, required=True))
    else:
        condition = NotReady(tokens.window(metric, required=False))
    tokens.end()
    return condition


@dataclass(frozen=True, slots=True)
class Webhook:
    """A JSON POST to ``url`` (http or https)."""

    url: str

    def __str__(self) -> str:
        return f"webhook:{self.url}"

    def __repr__(self) -> str:
        # Reprs end up in logs and tracebacks (a rule's, an event's): they show the URL redacted.
        return f"Webhook({redacted_url(self.url)!r})"

    @property
    def host(self) -> str:
        """The URL's host, lower case, without brackets."""
        return urlsplit(self.url).hostname or ""

    @property
    def redacted(self) -> str:
        """The channel without the URL's credentials, path and query, where webhook secrets usually live: what
        listings, the audit log, history and logs show."""
        return f"webhook:{redacted_url(self.url)}"


@dataclass(frozen=True, slots=True)
class Email:
    """A plain-text mail to ``address`` through the configured SMTP server."""

    address: str

    def __str__(self) -> str:
        return f"email:{self.address}"

    @property
    def redacted(self) -> str:
        return str(self)


@dataclass(frozen=True, slots=True)
class Log:
    """A record on the control plane's log (logger ``conduit.alerts``)."""

    def __str__(self) -> str:
        return "log"

    @property
    def redacted(self) -> str:
        return "log"


Channel = Webhook | Email | Log
"""Where a rule's notifications go; ``str()`` is the ``--notify`` text it was parsed from, ``redacted`` the same
without secrets a URL may carry."""

# Addresses travel in an SMTP envelope: no spaces, no angle brackets, exactly one '@' with a dotted domain.
_ADDRESS = re.compile(r"[^\s@<>(),;:\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
MAX_CHANNEL = 2048


def parse_channel(text: str) -> Channel:
    """The channel of ``--notify TEXT``: ``webhook:URL``, ``email:ADDRESS`` or ``log``.

    Raises:
        ConduitError: INVALID_ARGUMENT naming what is wrong.
    """
    text = text.strip()
    if text == "log":
        return Log()
    if len(text) > MAX_CHANNEL:
        raise _invalid(f"channel is longer than {MAX_CHANNEL} characters")
    kind, sep, target = text.partition(":")
    if kind == "webhook" and sep:
        # The URL itself is never echoed: it may hold the receiver's secret, and errors travel further than rules.
        shown = redacted_url(target)
        url = urlsplit(target)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise _invalid("webhook: the URL must be http:// or https:// with a host")
        if any(ch.isspace() or not ch.isprintable() for ch in target):
            raise _invalid(f"webhook {shown}: must not contain spaces or control characters")
        try:
            url.port  # noqa: B018 (parses the port)
        except ValueError:
            raise _invalid(f"webhook {shown}: the port must be a number from 0 to 65535") from None
        return Webhook(target)
    if kind == "email" and sep:
        _, address = parseaddr(target)
        if address != target or not _ADDRESS.fullmatch(address):
            raise _invalid(f"email {target!r} must be one plain address, like oncall@example.com")
        return Email(address)
    raise _invalid(f"unknown channel {text!r}: write webhook:URL, email:ADDRESS or log")

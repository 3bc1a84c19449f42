"""One GET of an import, under an outbound policy: retries with backoff, redirects re-checked, a byte budget.

Every request goes through ``contract.outbound.request``, which resolves the host once and connects only to an
address the policy allows; a redirect is a new request, checked the same way, and the ``--header`` values go only to
the origin they were given for.
"""

from __future__ import annotations

import email.utils
import http
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import urllib3

from contract.entities import redact_source_url
from contract.outbound import OutboundPolicy, Refused, request
from trainers._errors import DatasetError, first_line

__all__ = ["DEFAULT_BACKOFF", "Answer", "Backoff", "get"]

_RETRIED = frozenset({429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between tries: ``base_s`` doubled each time up to ``max_s``; a ``Retry-After`` is honoured up to
    ``max_retry_after_s`` (a server asking for more fails the import rather than holding it for hours)."""

    base_s: float = 0.5
    max_s: float = 30.0
    max_retry_after_s: float = 120.0
    sleep: Callable[[float], None] = time.sleep


DEFAULT_BACKOFF = Backoff()


@dataclass(frozen=True, slots=True)
class Answer:
    """A 2xx answer read whole: its body, its Content-Type and the URL it came from (after redirects)."""

    url: str
    body: bytes
    content_type: str
    link: str
    """The ``Link`` header (empty when absent)."""


def _same_origin(a: str, b: str) -> bool:
    x, y = urlsplit(a), urlsplit(b)
    return (x.scheme, x.hostname, x.port) == (y.scheme, y.hostname, y.port)


def _retry_after(value: str | None, now: Callable[[], datetime]) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - now()).total_seconds(), 0.0)


def _status_line(code: int) -> str:
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = "unknown status"
    hint = {401: " (check the --header credentials)", 403: " (check the --header credentials)"}.get(code, "")
    return f"HTTP {code} {phrase}{hint}"


def get(
    url: str,
    *,
    headers: Mapping[str, str],
    policy: OutboundPolicy,
    timeout_s: float,
    attempts: int,
    max_bytes: int,
    budget: int | None = None,
    explain_refusals: bool = True,
    backoff: Backoff = DEFAULT_BACKOFF,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Answer:
    """GET ``url`` and read its body: at most ``budget`` bytes, what is left of the import's ``max_bytes``.

    Retries a 429 or 5xx answer and a failed or timed-out connection up to ``attempts`` tries in all, waiting as
    ``backoff`` says (or as ``Retry-After`` asks). Follows up to five redirects. ``explain_refusals``: whether the
    error says why the policy refused a destination (not where the reader is not the operator, as in a job's log:
    it would tell what listens inside the network).

    Raises:
        DatasetError: one line naming the URL (without secrets) and what went wrong: a refused destination, an HTTP
            status, a connection that kept failing, a body over ``max_bytes``.
    """
    shown = redact_source_url(url)
    origin = url
    for _ in range(_MAX_REDIRECTS + 1):
        sent = dict(headers) if _same_origin(url, origin) else {}
        outcome = _get_with_retries(
            url, headers=sent, policy=policy, timeout_s=timeout_s, attempts=attempts, max_bytes=max_bytes,
            budget=max_bytes if budget is None else budget, explain_refusals=explain_refusals, backoff=backoff,
            now=now,
        )  # fmt: skip
        if isinstance(outcome, Answer):
            return outcome
        url = urljoin(url, outcome)
        shown = redact_source_url(url)
    raise DatasetError(f"GET {shown}: more than {_MAX_REDIRECTS} redirects")


def _get_with_retries(
    url: str,
    *,
    headers: Mapping[str, str],
    policy: OutboundPolicy,
    timeout_s: float,
    attempts: int,
    max_bytes: int,
    budget: int,
    explain_refusals: bool,
    backoff: Backoff,
    now: Callable[[], datetime],
) -> Answer | str:
    """The answer, or the ``Location`` of a redirect."""
    shown = redact_source_url(url)
    for attempt in range(1, attempts + 1):
        wait = min(backoff.base_s * 2 ** (attempt - 1), backoff.max_s)
        try:
            with request(policy, "GET", url, headers=headers, timeout_s=timeout_s) as response:
                status = response.status
                if status in _REDIRECTS and response.headers.get("Location"):
                    return str(response.headers["Location"])
                if 200 <= status < 300:
                    return Answer(
                        url,
                        _read(response, max_bytes, budget, shown),
                        response.headers.get("Content-Type", ""),
                        response.headers.get("Link", ""),
                    )
                problem = _status_line(status)
                if status not in _RETRIED:
                    raise DatasetError(f"GET {shown}: {problem}")
                asked = _retry_after(response.headers.get("Retry-After"), now)
        except Refused as exc:
            # The reason (loopback, private…) is the operator's to read; the user learns only that it was refused.
            reason = exc.reason if explain_refusals else "not allowed or not resolvable"
            raise DatasetError(f"GET {shown}: destination refused by the outbound policy ({reason})") from None
        except urllib3.exceptions.HTTPError as exc:
            problem = f"connection failed: {first_line(exc)}"
            asked = None
        if asked is not None:
            if asked > backoff.max_retry_after_s:
                raise DatasetError(
                    f"GET {shown}: {problem}, and Retry-After asks for {asked:.0f} s "
                    f"(more than the {backoff.max_retry_after_s:.0f} s an import waits)"
                )
            wait = asked
        if attempt < attempts:
            backoff.sleep(wait)
    raise DatasetError(f"GET {shown}: {problem} (after {attempts} attempt{'s' if attempts > 1 else ''})")


def _read(response: urllib3.BaseHTTPResponse, max_bytes: int, budget: int, shown: str) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > budget:
        raise DatasetError(f"GET {shown}: more than the limit of {max_bytes} bytes (--max-bytes)")
    body = bytearray()
    try:
        for chunk in response.stream(_CHUNK):
            body += chunk
            if len(body) > budget:
                raise DatasetError(f"GET {shown}: more than the limit of {max_bytes} bytes (--max-bytes)")
    except urllib3.exceptions.HTTPError as exc:
        raise DatasetError(f"GET {shown}: the body could not be read: {first_line(exc)}") from None
    return bytes(body)

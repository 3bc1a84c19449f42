"""Server-side sign-in sessions: the browser holds a random session id, never the API token.

A session ends when it is idle too long, when it reaches its lifetime, at sign-out, and when the control plane stops
accepting its token (every page checks it with WhoAmI). Sessions live in this process: a restart signs everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Session", "Sessions", "same_secret"]


def same_secret(a: str, b: str) -> bool:
    """Constant-time equality of two secrets (an empty one never matches)."""
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def _key(session_id: str) -> str:
    # Kept by hash: whatever reads this process's memory learns no cookie that works.
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass
class Session:
    token: str
    """The control plane token the session calls with."""
    csrf: str
    """What every form of the session must send back."""
    created: float
    seen: float


class Sessions:
    """Open sessions, by the hash of their id.

    Args:
        idle_s: A session unused this long ends.
        lifetime_s: A session ends this long after it began, used or not.
        max_sessions: Most sessions held; opening one more ends the least recently used.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        idle_s: float,
        lifetime_s: float,
        *,
        max_sessions: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle_s = idle_s
        self._lifetime_s = lifetime_s
        self._max = max_sessions
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, token: str) -> tuple[str, Session]:
        """A new session for ``token``: its id (for the cookie) and the session."""
        now = self._clock()
        self._expire(now)
        if len(self._sessions) >= self._max:
            oldest = min(self._sessions, key=lambda key: self._sessions[key].seen)
            del self._sessions[oldest]
        session_id = secrets.token_urlsafe(32)
        session = Session(token, secrets.token_urlsafe(32), now, now)
        self._sessions[_key(session_id)] = session
        return session_id, session

    def get(self, session_id: str) -> Session | None:
        """The live session with this id, marked as used now; ``None`` for an unknown or ended one."""
        if not session_id:
            return None
        key = _key(session_id)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self._clock()
        if now - session.seen > self._idle_s or now - session.created > self._lifetime_s:
            del self._sessions[key]
            return None
        session.seen = now
        return session

    def close(self, session_id: str) -> None:
        self._sessions.pop(_key(session_id), None)

    def _expire(self, now: float) -> None:
        for key, session in list(self._sessions.items()):
            if now - session.seen > self._idle_s or now - session.created > self._lifetime_s:
                del self._sessions[key]

"""What every call of every servicer runs inside: authentication, authorization, and one mapping of failures; and
what keeps a long call's caller authorized while it stays open."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from contract.entities import User
from contract.errors import ConduitError
from contract.status import details_of, status_of
from control_plane.auth import Authenticator, authorize

__all__ = ["INTERNAL_MESSAGE", "Context", "guarded", "until_revoked"]

log = logging.getLogger("control_plane.transport")

INTERNAL_MESSAGE = "internal error; the control plane's log has the details"

Context = grpc.aio.ServicerContext[Any, Any]
T = TypeVar("T")


@contextlib.asynccontextmanager
async def guarded(call: str, context: Context, authenticator: Authenticator) -> AsyncIterator[User]:
    """Yield the caller once its token is valid and its role may make ``call`` (a name of ``auth.PERMISSIONS``);
    answer any failure inside with its status: a ``ConduitError``'s own, INTERNAL (logged) for anything else."""
    try:
        user = await authenticator.authenticate(context.invocation_metadata() or ())
        authorize(user, call)
        yield user
    except ConduitError as exc:
        # Messages echo what callers sent; bounded here, once for every call, so that each stays its own status.
        await context.abort(status_of(exc.code), details_of(exc.message))
    except grpc.aio.AbortError:
        raise
    except Exception:
        log.exception("%s failed", call)
        await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)


async def until_revoked(
    items: AsyncIterator[T], recheck: Callable[[], Awaitable[object]], interval: float
) -> AsyncIterator[T]:
    """``items``, with ``recheck()`` awaited every ``interval`` seconds while they flow or while the next one is
    awaited; its error (UNAUTHENTICATED once the caller's user is disabled) ends the stream.

    The wait for the next item is never cancelled by a re-check, only when the stream ends: a watch idle for hours
    is still re-checked every interval.
    """
    loop = asyncio.get_running_loop()
    iterator = aiter(items)
    end = object()

    async def receive() -> Any:
        return await anext(iterator, end)

    checked = loop.time()
    pending: asyncio.Task[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = loop.create_task(receive())
            wait = max(0.0, checked + interval - loop.time())
            done, _ = await asyncio.wait({pending}, timeout=wait)
            if loop.time() - checked >= interval:
                await recheck()
                checked = loop.time()
            if not done:
                continue
            item, pending = pending.result(), None
            if item is end:
                return
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()

"""What every call of every servicer runs inside: authentication, authorization, and one mapping of failures."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from contract.entities import User
from contract.errors import ConduitError
from contract.status import status_of
from control_plane.auth import Authenticator, authorize

__all__ = ["INTERNAL_MESSAGE", "Context", "guarded"]

log = logging.getLogger("control_plane.transport")

INTERNAL_MESSAGE = "internal error; the control plane's log has the details"

Context = grpc.aio.ServicerContext[Any, Any]


@contextlib.asynccontextmanager
async def guarded(call: str, context: Context, authenticator: Authenticator) -> AsyncIterator[User]:
    """Yield the caller once its token is valid and its role may make ``call`` (a name of ``auth.PERMISSIONS``);
    answer any failure inside with its status: a ``ConduitError``'s own, INTERNAL (logged) for anything else."""
    try:
        user = await authenticator.authenticate(context.invocation_metadata() or ())
        authorize(user, call)
        yield user
    except ConduitError as exc:
        await context.abort(status_of(exc.code), exc.message)
    except grpc.aio.AbortError:
        raise
    except Exception:
        log.exception("%s failed", call)
        await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)

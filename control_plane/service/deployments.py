"""Deploy, roll back and list what the server pools serve."""

from __future__ import annotations

import asyncio

from contract.entities import Deployment, DeploymentSpec, Page
from control_plane.service.changes import Changes
from control_plane.store import AbstractStore

__all__ = ["DeploymentService"]


class DeploymentService:
    """Every change wakes the pool's watches at once (other replicas' watches see it on their next poll)."""

    def __init__(self, store: AbstractStore, changes: Changes) -> None:
        self._store = store
        self._changes = changes

    async def deploy(self, spec: DeploymentSpec, *, actor: str) -> Deployment:
        deployment = await asyncio.to_thread(self._store.deploy, spec, actor=actor)
        self._changes.notify()
        return deployment

    async def rollback(self, pool: str, model: str, *, actor: str) -> Deployment:
        deployment = await asyncio.to_thread(self._store.rollback, pool, model, actor=actor)
        self._changes.notify()
        return deployment

    async def list_deployments(
        self, *, pool: str | None, model: str | None, history: bool, page_size: int, page_token: str
    ) -> Page[Deployment]:
        return await asyncio.to_thread(
            self._store.list_deployments,
            pool=pool,
            model=model,
            history=history,
            page_size=page_size,
            page_token=page_token,
        )

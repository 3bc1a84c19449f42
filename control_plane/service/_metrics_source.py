"""The alerting library's ``MetricsSource`` on the registry: roll-ups as stored, drift against a version's baseline
(``_baseline.version_baseline``), readiness as the servers' heartbeats report it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from contract.entities import DriftRule, Rollup
from contract.errors import ConduitError, ErrorCode
from control_plane.alerting import DriftScores
from control_plane.artifacts import ArtifactStore
from control_plane.monitoring import Baseline, build_report
from control_plane.service._baseline import version_baseline
from control_plane.store import AbstractStore

__all__ = ["RegistryMetrics"]

# One window wide enough that every roll-up of any period falls in it (windows start at multiples since the epoch).
_ONE_WINDOW_MINUTES = 2**30


class RegistryMetrics:
    """Reads what alert evaluation needs from ``store`` (synchronously: evaluation runs on a scheduler thread)."""

    def __init__(self, store: AbstractStore, artifacts: ArtifactStore, rule: DriftRule) -> None:
        self._store = store
        self._artifacts = artifacts
        self._rule = rule

    def list_rollups(self, model: str, version: str, since: datetime, until: datetime) -> Sequence[Rollup]:
        return self._store.list_rollups(model, version, since, until)

    def drift(self, model: str, version: str, since: datetime, until: datetime) -> DriftScores | None:
        baseline = self._baseline(model, version)
        if baseline is None:
            return None
        rollups = self._store.list_rollups(model, version, since, until)
        report = build_report(
            model, int(version), rollups, minutes=_ONE_WINDOW_MINUTES, baseline=baseline, rule=self._rule
        )
        # A feature with too few rows has no verdict: its PSI is noise, and must not fire a drift alert.
        features = [feature for window in report.windows for feature in window.features if not feature.too_few_rows]
        rows = max((feature.count for feature in features), default=0)
        if rows == 0:
            return None
        # Monitoring's verdict (significant, on enough rows) decides which features drifted; the rule's threshold
        # then applies to their PSI.
        drifted = frozenset(feature.feature for feature in features if feature.drifted)
        return DriftScores(rows, {feature.feature: feature.psi for feature in features}, drifted)

    def ready(self, model: str, version: str) -> bool | None:
        states = [
            loaded.state
            for server in self._store.list_servers(None)
            for loaded in server.models
            if loaded.model == model and str(loaded.version) == version
        ]
        return None if not states else "READY" in states

    def _baseline(self, model: str, version: str) -> Baseline | None:
        if not version.isdigit():
            return None  # a server outside the registry: no lineage to compare with
        try:
            found = self._store.get_version(model, version=int(version))
        except ConduitError as exc:
            if exc.code in (ErrorCode.NOT_FOUND, ErrorCode.INVALID_ARGUMENT):
                return None
            raise
        return version_baseline(self._store, self._artifacts, found)

"""Adding bulk-recorded metrics to a collection of the SDK's own, and the per-reader view both bulk sets keep."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, Self, TypeVar

from opentelemetry.sdk.metrics.export import AggregationTemporality, Metric, MetricsData, ResourceMetrics, ScopeMetrics
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

__all__ = ["Attributes", "BulkView", "merge_metrics"]

Attributes = tuple[tuple[str, str], ...]


def merge_metrics(data: MetricsData, scope: InstrumentationScope, metrics: Sequence[Metric]) -> MetricsData:
    """``data`` with ``metrics`` added to the instrumentation scope ``scope`` of its first resource."""
    if not metrics or not data.resource_metrics:
        return data
    first, *rest = data.resource_metrics
    scopes = list(first.scope_metrics)
    for index, scope_metrics in enumerate(scopes):
        if scope_metrics.scope.name == scope.name:
            scopes[index] = ScopeMetrics(
                scope_metrics.scope, [*scope_metrics.metrics, *metrics], scope_metrics.schema_url
            )
            break
    else:
        scopes.append(ScopeMetrics(scope, list(metrics), ""))
    return MetricsData([ResourceMetrics(first.resource, scopes, first.schema_url), *rest])


class _Series(Protocol):
    start_ns: int

    def copy(self) -> Self: ...


S = TypeVar("S", bound=_Series)


class _Owner(Protocol):
    scope: InstrumentationScope
    clock: Callable[[], int]

    def collect(self, view: Any) -> list[Metric]: ...  # its own view type


class BulkView(Generic[S]):
    """What one reader sees: every measurement since the start (cumulative) or since its last collection (delta).

    The owning set adds to ``series`` and calls ``take`` under its lock.
    """

    def __init__(self, owner: _Owner, temporality: AggregationTemporality) -> None:
        self._owner = owner
        self.temporality = temporality
        self.series: dict[tuple[str, Attributes], S] = {}
        self._since_ns = owner.clock()

    def start_ns(self, now_ns: int) -> int:
        """Where a new series starts: the interval's start (delta) or now (cumulative)."""
        return self._since_ns if self.temporality is AggregationTemporality.DELTA else now_ns

    def merge(self, data: MetricsData) -> MetricsData:
        """``data`` with this view's metrics added to the set's instrumentation scope (of its first resource)."""
        return merge_metrics(data, self._owner.scope, self._owner.collect(self))

    def take(self, now_ns: int) -> dict[tuple[str, Attributes], S]:
        """The series to export: a copy (cumulative), or everything since the last collection, which it ends (delta)."""
        if self.temporality is AggregationTemporality.DELTA:
            taken, self.series, self._since_ns = self.series, {}, now_ns
            return taken
        return {key: s.copy() for key, s in self.series.items()}

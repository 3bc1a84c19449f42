"""Adding bulk-recorded metrics to a collection of the SDK's own."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.metrics.export import Metric, MetricsData, ResourceMetrics, ScopeMetrics
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

__all__ = ["merge_metrics"]


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

"""The control plane's OTLP metrics receiver: ``opentelemetry.proto.collector.metrics.v1.MetricsService/Export``
beside the ControlPlane service on the same port, with the same tokens (permission ``ExportMetrics``: role server
or admin). Authenticate, decode, hand the points to the core; nothing else.

The method is registered by hand, taking the request's bytes: with the generated ``add_MetricsServiceServicer_to_
server``, grpc decodes the request itself and answers undecodable bytes with UNKNOWN, where INVALID_ARGUMENT is the
truth (and what OTLP exporters know not to retry).
"""

from __future__ import annotations

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from control_plane.auth import Authenticator
from control_plane.service import MonitoringService
from control_plane.transport import otlp
from control_plane.transport._calls import Context, guarded

__all__ = ["SERVICE_NAME", "MetricsServicer", "add_metrics_service"]

SERVICE_NAME = metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name


class MetricsServicer:
    """OTLP/gRPC metrics export into the monitoring roll-ups."""

    def __init__(self, monitoring: MonitoringService, authenticator: Authenticator) -> None:
        self._monitoring = monitoring
        self._auth = authenticator

    async def Export(self, request: bytes, context: Context) -> metrics_service_pb2.ExportMetricsServiceResponse:
        # The token is checked before the payload is read: a caller without one learns nothing about its data.
        async with guarded("ExportMetrics", context, self._auth):
            await self._monitoring.export(otlp.points(otlp.export_request(request)))
            return metrics_service_pb2.ExportMetricsServiceResponse()


def add_metrics_service(servicer: MetricsServicer, server: grpc.aio.Server) -> None:
    """Serve ``servicer`` on ``server`` under OTLP's service and method names."""
    export: grpc.RpcMethodHandler[bytes, metrics_service_pb2.ExportMetricsServiceResponse]
    export = grpc.unary_unary_rpc_method_handler(
        servicer.Export,
        request_deserializer=None,
        response_serializer=metrics_service_pb2.ExportMetricsServiceResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, {"Export": export}),))

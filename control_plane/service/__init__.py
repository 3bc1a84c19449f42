"""The control plane's core: what each API call does, with no transport in sight (no grpc import here).

Calls are async; the store is synchronous and runs in worker threads (``asyncio.to_thread``), so a slow query never
stalls the event loop that streams uploads, downloads and watches.
"""

from __future__ import annotations

from dataclasses import dataclass

from control_plane.service._parquet import ParquetLimits
from control_plane.service.alerting import Alert, AlertingService
from control_plane.service.changes import Changes
from control_plane.service.datasets import DatasetDownload, DatasetService
from control_plane.service.deployments import DeploymentService
from control_plane.service.jobs import JobRunners
from control_plane.service.monitoring import MonitoringService
from control_plane.service.predictions import PredictionLogDownload, PredictionLogService
from control_plane.service.registry import Download, RegistryService
from control_plane.service.servers import Clock, ServerService, utc_now
from control_plane.service.spool import Spool
from control_plane.service.uploads import AttachmentUpload, UploadHeader, UploadService
from control_plane.service.users import ADMIN_USER, UserService
from control_plane.service.watch import WatchService

__all__ = [
    "ADMIN_USER",
    "Alert",
    "AlertingService",
    "AttachmentUpload",
    "Changes",
    "Clock",
    "DatasetDownload",
    "DatasetService",
    "DeploymentService",
    "Download",
    "JobRunners",
    "MonitoringService",
    "ParquetLimits",
    "PredictionLogDownload",
    "PredictionLogService",
    "RegistryService",
    "ServerService",
    "Services",
    "Spool",
    "UploadHeader",
    "UploadService",
    "UserService",
    "WatchService",
    "utc_now",
]


@dataclass(frozen=True, slots=True)
class Services:
    """Every part of the core, as the transport needs them."""

    registry: RegistryService
    uploads: UploadService
    datasets: DatasetService
    deployments: DeploymentService
    servers: ServerService
    watch: WatchService
    users: UserService
    monitoring: MonitoringService
    alerting: AlertingService
    predictions: PredictionLogService

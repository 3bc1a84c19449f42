"""gRPC transport of the control plane. ``servicer.ControlPlaneServicer`` serves the one ControlPlane service by
combining one servicer per domain (``_registry``, ``_datasets``, ``_deployments``, ``_monitoring``, ``_alerting``,
``_users``), each with its converters beside it (``_<domain>_converters``); ``_converters`` and ``_streams`` hold what
the domains share. The core (``control_plane.service``) never imports grpc; the code -> status table is the shared one
(``contract.status``)."""

__all__: list[str] = []

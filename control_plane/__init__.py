"""Conduit's control plane (`conduit control-plane`): model registry, data sets, artifacts, deployments, users, audit.

The server is built in ``control_plane.app``; this package stays light so clients can import its generated stubs.
"""

__all__: list[str] = []

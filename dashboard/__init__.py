"""``conduit dashboard``: a read-only web UI over the control plane's gRPC API.

The dashboard is its own process and a plain client of the control plane: every page is drawn from gRPC calls made
with the token of the person looking at it, so the control plane's roles decide what is visible, and the dashboard
has no path of its own into the database.
"""

__all__: list[str] = []

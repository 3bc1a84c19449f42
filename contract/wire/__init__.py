"""Entities to and from the control plane API's protobuf messages: one converter per message, both directions.

``message(value)`` makes the message of an entity and ``message_of(msg)`` reads one back; the servicers, the typed
client, the CLI's JSON output and the dashboard all convert through here. Imports only the generated
``control_plane.protocol`` stubs, never the control plane itself.
"""

from contract.wire._datasets import (
    category_count,
    column_profile,
    column_profile_of,
    dataset_profile,
    dataset_profile_of,
)

__all__ = ["category_count", "column_profile", "column_profile_of", "dataset_profile", "dataset_profile_of"]

"""The composed servicer: every call of the service is served by exactly one domain servicer."""

from __future__ import annotations

import inspect

from control_plane.protocol import control_plane_pb2 as cp
from control_plane.protocol import control_plane_pb2_grpc as cp_grpc
from control_plane.transport.servicer import ControlPlaneServicer

CALLS = {method.name for method in cp.DESCRIPTOR.services_by_name["ControlPlane"].methods}
DOMAINS = [base for base in ControlPlaneServicer.__bases__ if base is not cp_grpc.ControlPlaneServicer]


def served_by(domain: type) -> set[str]:
    """The calls ``domain`` defines itself (its shared base defines none)."""
    return {name for name, value in vars(domain).items() if name[0].isupper() and inspect.isfunction(value)}


def test_no_call_falls_through_to_the_generated_unimplemented_answer() -> None:
    unserved = {
        name for name in CALLS if getattr(ControlPlaneServicer, name) is getattr(cp_grpc.ControlPlaneServicer, name)
    }
    assert unserved == set()


def test_each_call_has_one_domain_and_each_domain_serves_only_calls_of_the_service() -> None:
    served = [name for domain in DOMAINS for name in served_by(domain)]
    assert sorted(served) == sorted(CALLS)

"""Generated messages and stubs of the control plane API (``proto/generate.py`` writes every module here but this one).

mypy-protobuf's stubs declare ``ControlPlaneAsyncStub``, the type ``ControlPlaneStub`` takes on a ``grpc.aio`` channel,
but grpc's generator writes no class of that name: at run time the one stub class serves both kinds of channel. The
name is provided here so that code written against the declared type (``contract.client``) runs.
"""

from control_plane.protocol import control_plane_pb2_grpc as _stubs

vars(_stubs).setdefault("ControlPlaneAsyncStub", _stubs.ControlPlaneStub)

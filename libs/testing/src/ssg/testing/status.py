"""What a failed gRPC call says: the field paths of its INVALID_ARGUMENT details."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def field_violations(error: grpc.aio.AioRpcError) -> set[str]:
    """Field paths of the BadRequest detail of an INVALID_ARGUMENT (AssertionError otherwise)."""
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.code()
    status = rpc_status.from_call(error)
    assert status is not None, "no rich status details"
    found: set[str] = set()
    for detail in status.details:
        request = error_details_pb2.BadRequest()
        if detail.Unpack(request):
            found |= {v.field for v in request.field_violations}
    return found

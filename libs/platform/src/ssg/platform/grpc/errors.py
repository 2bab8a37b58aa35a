"""The one table from domain errors to gRPC status codes, and rich status construction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ssg.platform.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    ValidationError,
    VersionConflict,
)

# Looked up along the exception's MRO, so a service's own subclass (say OrganizationNotFound)
# maps like its parent without being listed here.
STATUS_BY_ERROR: dict[type[DomainError], grpc.StatusCode] = {
    ValidationError: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    # ABORTED is what gRPC (and Google's API guidelines) use for concurrency conflicts:
    # the client should retry at a higher level (re-read, re-apply).
    VersionConflict: grpc.StatusCode.ABORTED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    # A bare business-rule violation that no subclass above describes.
    DomainError: grpc.StatusCode.FAILED_PRECONDITION,
}


def status_code_for(error: DomainError) -> grpc.StatusCode:
    """The status code for a domain error, by the nearest mapped class in its MRO."""
    for cls in type(error).__mro__:
        code = STATUS_BY_ERROR.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL  # unreachable: DomainError itself is mapped


@dataclass(frozen=True)
class RichStatus(grpc.Status):
    """A grpc.Status (code, details, trailing metadata) ready for ``abort_with_status``."""

    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


def to_rich_status(
    error: DomainError, extra_metadata: Sequence[tuple[str, str]] = ()
) -> RichStatus:
    """Status for error; a ValidationError carries google.rpc.BadRequest field violations."""
    code = status_code_for(error)
    message = _summary(error)
    proto = status_pb2.Status(code=_RPC_CODES[code], message=message)
    if isinstance(error, ValidationError):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.reason)
                for v in error.violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad_request)
        proto.details.append(detail)
    # to_status yields the code, message and the grpc-status-details-bin trailer.
    status = rpc_status.to_status(proto)
    return RichStatus(
        code=status.code,
        details=status.details,
        trailing_metadata=(*status.trailing_metadata, *extra_metadata),
    )


# The message travels twice (grpc-message and inside grpc-status-details-bin, base64) beside
# the BadRequest details; clients refuse trailers over 8 KiB, so the readable message names only
# the first violations and the details carry them all.
MESSAGE_VIOLATIONS = 5
MESSAGE_MAX_CHARS = 1000


def _summary(error: DomainError) -> str:
    """The readable status message: every violation up to a few, then how many more."""
    if isinstance(error, ValidationError) and len(error.violations) > MESSAGE_VIOLATIONS:
        shown = "; ".join(str(v) for v in error.violations[:MESSAGE_VIOLATIONS])
        more = len(error.violations) - MESSAGE_VIOLATIONS
        message = f"invalid request: {shown}; and {more} more (see the BadRequest details)"
    else:
        message = str(error)
    if len(message) > MESSAGE_MAX_CHARS:
        message = message[: MESSAGE_MAX_CHARS - 1] + "…"
    return message


# grpc.StatusCode -> google.rpc.Code number (the values agree; this keeps it explicit).
_RPC_CODES: dict[grpc.StatusCode, int] = {
    code: getattr(code_pb2, code.name) for code in grpc.StatusCode
}

"""Domain errors, the Violations collector and the one mapping table to gRPC status codes."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from ssg.platform.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationError,
    VersionConflict,
    Violations,
)
from ssg.platform.grpc.errors import STATUS_BY_ERROR, status_code_for, to_rich_status


def test_violations_collects_every_failed_check_in_order():
    v = Violations()
    assert v.check(True, "name", "required") is True
    assert v.check(False, "name", "must not be empty") is False
    v.check(False, "sdgs[0]", "must be 1 to 17")
    assert len(v) == 2
    with pytest.raises(ValidationError) as info:
        v.raise_if_any()
    assert info.value.violations == (
        FieldViolation("name", "must not be empty"),
        FieldViolation("sdgs[0]", "must be 1 to 17"),
    )
    assert "name: must not be empty" in str(info.value)
    assert "sdgs[0]: must be 1 to 17" in str(info.value)


def test_violations_without_failures_do_not_raise():
    v = Violations()
    v.check(True, "name", "required")
    v.raise_if_any()
    assert not v


def test_validation_error_needs_a_violation():
    with pytest.raises(ValueError):
        ValidationError([])


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ValidationError.single("f", "bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (NotFound("x"), grpc.StatusCode.NOT_FOUND),
        (AlreadyExists("x"), grpc.StatusCode.ALREADY_EXISTS),
        (VersionConflict("x"), grpc.StatusCode.ABORTED),
        (PermissionDenied("x"), grpc.StatusCode.PERMISSION_DENIED),
        (Unauthenticated("x"), grpc.StatusCode.UNAUTHENTICATED),
        (FailedPrecondition("x"), grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
def test_each_domain_error_has_its_status(error, code):
    assert status_code_for(error) is code


def test_subclasses_map_like_their_nearest_listed_parent():
    class OrganizationNotFound(NotFound):
        pass

    class InvalidTransition(DomainError):
        pass

    assert status_code_for(OrganizationNotFound("o1")) is grpc.StatusCode.NOT_FOUND
    assert status_code_for(InvalidTransition("pending -> published")) is (
        grpc.StatusCode.FAILED_PRECONDITION
    )


def test_table_covers_every_error_the_module_defines():
    import ssg.platform.errors as errors

    defined = {
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, DomainError)
    }
    assert defined == set(STATUS_BY_ERROR)


def test_rich_status_carries_bad_request_field_violations_and_extra_metadata():
    error = ValidationError(
        [FieldViolation("message", "too long"), FieldViolation("delay_ms", "too big")]
    )
    status = to_rich_status(error, [("x-trace-id", "abc12345")])
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "message: too long" in status.details
    metadata = dict(status.trailing_metadata)
    assert metadata["x-trace-id"] == "abc12345"
    proto = status_pb2.Status.FromString(metadata["grpc-status-details-bin"])
    assert proto.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad = error_details_pb2.BadRequest()
    assert proto.details[0].Unpack(bad)
    assert [(f.field, f.description) for f in bad.field_violations] == [
        ("message", "too long"),
        ("delay_ms", "too big"),
    ]


def test_rich_status_for_a_plain_domain_error_has_no_details():
    status = to_rich_status(NotFound("organization o1 not found"))
    assert status.code is grpc.StatusCode.NOT_FOUND
    assert status.details == "organization o1 not found"
    proto = status_pb2.Status.FromString(dict(status.trailing_metadata)["grpc-status-details-bin"])
    assert len(proto.details) == 0


def test_many_violations_keep_the_message_short_and_the_details_complete():
    error = ValidationError(
        FieldViolation(f"organization.sdgs[{i}]", "must be 1-17") for i in range(50)
    )
    status = to_rich_status(error)
    assert "organization.sdgs[0]: must be 1-17" in status.details
    assert "organization.sdgs[5]" not in status.details
    assert "and 45 more" in status.details
    (details_bin,) = [v for k, v in status.trailing_metadata if k == "grpc-status-details-bin"]
    proto = status_pb2.Status.FromString(details_bin)
    bad_request = error_details_pb2.BadRequest()
    proto.details[0].Unpack(bad_request)
    assert len(bad_request.field_violations) == 50


def test_a_huge_message_is_cut():
    error = ValidationError.single("name", "x" * 10_000)
    assert len(to_rich_status(error).details) <= 1000

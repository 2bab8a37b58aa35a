"""Timestamps a caller sends are read into the domain or refused naming their field."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from ssg.catalog import mapping
from ssg.contracts.catalog.v1 import catalog_service_pb2 as pb
from ssg.contracts.catalog.v1 import funding_pb2
from ssg.platform.errors import ValidationError

OUT_OF_RANGE = (Timestamp(seconds=2**63 - 1), Timestamp(nanos=-1), Timestamp(seconds=-(2**40)))


def _fields(error: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [v.field for v in error.value.violations]


@pytest.mark.parametrize("bad", OUT_OF_RANGE)
def test_an_out_of_range_updated_since_is_invalid(bad: Timestamp) -> None:
    # Regression (fuzz): List* answered INTERNAL for these.
    request = pb.ListFundingOpportunitiesRequest(updated_since=bad)
    with pytest.raises(ValidationError) as info:
        mapping.timestamp_or_none(request, "updated_since")
    assert _fields(info) == ["updated_since"]


@pytest.mark.parametrize("bad", OUT_OF_RANGE)
def test_an_out_of_range_deadline_names_its_path_in_the_request(bad: Timestamp) -> None:
    # Regression (fuzz): UpdateFundingOpportunity answered INTERNAL for these.
    funding = funding_pb2.FundingOpportunity(title="Seed grants", deadline=bad)
    with pytest.raises(ValidationError) as info:
        mapping.funding_content(funding)
    assert _fields(info) == ["funding_opportunity.deadline"]


def test_a_valid_deadline_is_an_aware_datetime() -> None:
    funding = funding_pb2.FundingOpportunity(deadline=Timestamp(seconds=1_900_000_000))
    content = mapping.funding_content(funding)
    assert content.deadline is not None and content.deadline.tzinfo is not None
    assert content.deadline.timestamp() == 1_900_000_000
    assert mapping.timestamp_or_none(pb.ListNeedsRequest(), "updated_since") is None

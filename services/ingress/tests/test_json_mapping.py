"""The quick JSON-mapping reader gives what ParseDict gives: the same message or the same error."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from ssg.ingress.domain import json_mapping
from ssg.ingress.domain.catalogue import CATALOGUE

from .helpers import VALID_BODIES

RICH_SOLUTION: dict[str, Any] = {
    "externalId": "sol-1",
    "revision": 4,
    "solution": {
        "title": "Solar pumps ü 日本",
        "organizationId": "0f5b",
        "sdgs": ["SDG_CLEAN_WATER_AND_SANITATION", "SDG_CLIMATE_ACTION"],
        "indicators": [{"name": "wells", "year": 2024}, {}],
        "partners": [{"organizationId": "a1", "role": "PARTNER_ROLE_FUNDER"}],
        "budget": {"currencyCode": "USD", "units": 9_000_000_000, "nanos": -5},
        "period": {},
        "stale": False,
        "tags": [],
        "sdg_targets": [{"code": "6.1"}],
    },
}

ODD_SOLUTIONS: list[dict[str, Any]] = [
    {"externalId": "x", "revision": "3"},  # a 64-bit integer as a string
    {"externalId": "x", "revision": 2**64},  # out of range
    {"externalId": "x", "revision": -1},
    {"externalId": "x", "revision": 1.0},
    {"externalId": "x", "revision": True},
    {"externalId": None},
    {"externalId": 7},
    {"externalId": "x", "colour": "red"},
    {"externalId": "x", "external_id": "y"},  # one field named twice
    {"externalId": "\ud800"},
    {"externalId": "x", "solution": {"sdgs": ["NO_SUCH_GOAL"]}},
    {"externalId": "x", "solution": {"sdgs": [6]}},
    {"externalId": "x", "solution": {"sdgs": "SDG_CLIMATE_ACTION"}},
    {"externalId": "x", "solution": {"indicators": [None]}},
    {"externalId": "x", "solution": {"tags": [None]}},
    {"externalId": "x", "solution": {"createTime": "2026-11-27T12:00:00Z"}},
    {"externalId": "x", "solution": {"createTime": "yesterday"}},
    {"externalId": "x", "solution": []},
    {"externalId": "x", "solution": {"stale": "true"}},
    {"externalId": "x", "solution": {"budget": {"nanos": 2**31}}},
]


def outcome(read: Any, document: dict[str, Any], body: type[Message]) -> bytes | str:
    message = body()
    try:
        read(document, message)
    except json_format.ParseError as exc:
        return str(exc)
    return message.SerializeToString(deterministic=True)


@pytest.mark.parametrize("routing_key", sorted(CATALOGUE))
def test_every_valid_body_reads_as_parse_dict_reads_it_on_the_quick_path(routing_key):
    body = CATALOGUE[routing_key].body
    document = {"externalId": "e-1", "revision": 2, **VALID_BODIES[routing_key]}
    quick = body()
    # Raises when it gives up: the plain shapes must be read without ParseDict.
    json_mapping._fill(document, quick, json_mapping._plan(quick.DESCRIPTOR), 0)
    assert quick.SerializeToString(deterministic=True) == outcome(
        json_format.ParseDict, document, body
    )


@pytest.mark.parametrize("document", [RICH_SOLUTION, *ODD_SOLUTIONS])
def test_any_body_gives_the_message_or_the_error_parse_dict_gives(document):
    body = CATALOGUE["solution.proposed"].body
    expected = outcome(json_format.ParseDict, document, body)
    assert outcome(json_mapping.parse_dict, document, body) == expected


def test_a_record_sent_empty_is_present():
    body = CATALOGUE["expert.profile"].body
    message = body()
    json_mapping.parse_dict({"externalId": "x", "expert": {}}, message)
    assert message.HasField("expert")

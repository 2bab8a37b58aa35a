"""The published JSON Schemas are current and agree with what the bridge accepts."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from ssg.ingress.domain.catalogue import CATALOGUE
from ssg.ingress.schemas import render_all

from .helpers import VALID_BODIES, body_of

PUBLISHED = Path(__file__).resolve().parents[3] / "docs" / "ingress-schemas"


def test_the_published_schemas_are_current():
    rendered = render_all()
    published = {path.name: path.read_text() for path in PUBLISHED.glob("*.schema.json")}
    assert published == rendered, "run: uv run python -m ssg.ingress.schemas docs/ingress-schemas"


@pytest.mark.parametrize("routing_key", sorted(CATALOGUE))
def test_a_body_the_bridge_accepts_is_valid_and_a_wrong_type_is_not(routing_key):
    schema = json.loads(render_all()[f"{routing_key}.schema.json"])
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(body_of(routing_key, revision="2"))
    record_field = next(iter(VALID_BODIES[routing_key]))
    assert not validator.is_valid({"externalId": "x", record_field: {"title": 7, "name": 7}})
    assert not validator.is_valid({"externalId": "x", "unknownField": 1})

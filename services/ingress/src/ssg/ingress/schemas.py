"""JSON Schemas of the external bodies, derived from the protobuf descriptors (proto3 JSON mapping).

``python -m ssg.ingress.schemas DIR`` writes one ``<routing key>.schema.json`` per type; the
committed copies in docs/ingress-schemas are checked to be current by the tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from ssg.ingress.domain.catalogue import CATALOGUE

_INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64}
_UINT64 = {FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64}
_INT32 = {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32}
_UINT32 = {FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
}


def schema_of(message: Any, routing_key: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of a message descriptor as the bridge parses it (unknown fields
    refused)."""
    definitions: dict[str, Any] = {}
    root = _message(message, definitions)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:ssg:ingress:{routing_key}",
        "title": f"{message.full_name} (AMQP routing key {routing_key})",
        **root,
        "$defs": dict(sorted(definitions.items())),
    }


def _message(message: Descriptor, definitions: dict[str, Any]) -> dict[str, Any]:
    properties = {field.json_name: _field(field, definitions) for field in message.fields}
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _field(field: FieldDescriptor, definitions: dict[str, Any]) -> dict[str, Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value = field.message_type.fields_by_name["value"]
        return {"type": "object", "additionalProperties": _single(value, definitions)}
    single = _single(field, definitions)
    if field.is_repeated:
        return {"type": "array", "items": single}
    return single


def _single(field: FieldDescriptor, definitions: dict[str, Any]) -> dict[str, Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
        name = field.message_type.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name not in definitions:
            definitions[name] = {}  # placeholder first: messages may refer to themselves
            definitions[name] = _message(field.message_type, definitions)
        return {"$ref": f"#/$defs/{name}"}
    if kind == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        return {"type": "string", "enum": [value.name for value in field.enum_type.values]}
    if kind == FieldDescriptor.TYPE_STRING:
        return {"type": "string"}
    if kind == FieldDescriptor.TYPE_BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    if kind == FieldDescriptor.TYPE_BOOL:
        return {"type": "boolean"}
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return {"type": "number"}
    if kind in _INT32:
        return {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
    if kind in _UINT32:
        return {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}
    if kind in _INT64:
        # The JSON mapping writes 64-bit integers as strings; numbers are accepted too.
        return {"type": ["string", "integer"], "pattern": r"^-?[0-9]+$"}
    if kind in _UINT64:
        return {"type": ["string", "integer"], "pattern": r"^[0-9]+$", "minimum": 0}
    raise ValueError(f"no JSON Schema for field {field.full_name} of type {kind}")


def render_all() -> dict[str, str]:
    """File name -> schema text, for every external type."""
    return {
        f"{key}.schema.json": json.dumps(
            schema_of(external.body.DESCRIPTOR, key), indent=2, ensure_ascii=False
        )
        + "\n"
        for key, external in sorted(CATALOGUE.items())
    }


def main(argv: list[str]) -> int:
    """Write every schema into the directory named by argv[0]."""
    if len(argv) != 1:
        print("usage: python -m ssg.ingress.schemas DIR", file=sys.stderr)
        return 2
    target = Path(argv[0])
    target.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (target / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Read a JSON-mapping body into its message: a quick path for plain shapes, else ParseDict.

``json_format.ParseDict`` walks descriptors in Python and was about a tenth of the bridge's
time per message (docs/benchmarks.md). Bodies are mostly strings, integers, booleans, enum names,
lists of those and nested records, so those shapes are read here with a plan per message type.
Anything else (a null, a number given as a string, bytes, floats, maps, oneofs, well-known types,
a field named twice, an unknown field, a wrong type) makes the quick path give up: the message is
cleared and ParseDict reads the body, so every body is accepted, refused and reported exactly as
ParseDict does.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

# Kinds of field the quick path reads.
_STRING, _INT, _BOOL, _ENUM, _MESSAGE = range(5)
_INTS = {
    FieldDescriptor.CPPTYPE_INT32,
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT32,
    FieldDescriptor.CPPTYPE_UINT64,
}
# ParseDict refuses unpaired surrogates; a str holding any surrogate code point has one.
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_DEPTH = 32

# Per field: (name, kind, repeated, enum numbers by name or the nested message's plan).
_Field = tuple[str, int, bool, Any]
_plans: dict[str, dict[str, _Field]] = {}


class _GiveUp(Exception):
    """A shape the quick path does not read: ParseDict reads the whole body instead."""


def parse_dict(document: dict[str, Any], message: Message) -> None:
    """Fill message from a JSON object as ``json_format.ParseDict`` does (raises its ParseError)."""
    try:
        _fill(document, message, _plan(message.DESCRIPTOR), 0)
    except Exception:  # anything unusual, including a value protobuf refuses: ParseDict decides
        message.Clear()
        json_format.ParseDict(document, message)


def _plan(descriptor: Descriptor | Any) -> dict[str, _Field]:
    plan = _plans.get(descriptor.full_name)
    if plan is None:
        plan = {}
        _plans[descriptor.full_name] = plan  # before the fields: a type may contain itself
        for field in descriptor.fields:
            planned = _field(field)
            if planned is not None:
                plan[field.json_name] = plan[field.name] = planned
    return plan


def _field(field: FieldDescriptor) -> _Field | None:
    if field.containing_oneof is not None or field.is_extension:
        return None
    repeated = field.is_repeated
    if field.cpp_type == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:
            return None
        return (field.name, _STRING, repeated, None)
    if field.cpp_type in _INTS:
        return (field.name, _INT, repeated, None)
    if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return (field.name, _BOOL, repeated, None)
    enum, nested = field.enum_type, field.message_type
    if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM and enum is not None:
        numbers = {value.name: value.number for value in enum.values}
        return (field.name, _ENUM, repeated, numbers)
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE and nested is not None:
        if nested.GetOptions().map_entry or nested.full_name.startswith("google.protobuf."):
            return None
        return (field.name, _MESSAGE, repeated, _plan(nested))
    return None  # float and double: ParseDict's range and NaN rules


def _fill(document: dict[str, Any], message: Message, plan: dict[str, _Field], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _GiveUp
    seen: set[str] = set()
    for key, value in document.items():
        field = plan.get(key)
        if field is None:
            raise _GiveUp
        name, kind, repeated, extra = field
        if name in seen:
            raise _GiveUp
        seen.add(name)
        if repeated:
            if type(value) is not list:
                raise _GiveUp
            if kind == _MESSAGE:
                items = getattr(message, name)
                for item in value:
                    if type(item) is not dict:
                        raise _GiveUp
                    _fill(item, items.add(), extra, depth + 1)
            else:
                getattr(message, name).extend([_scalar(kind, extra, item) for item in value])
        elif kind == _MESSAGE:
            if type(value) is not dict:
                raise _GiveUp
            nested = getattr(message, name)
            nested.SetInParent()
            _fill(value, nested, extra, depth + 1)
        else:
            setattr(message, name, _scalar(kind, extra, value))


def _scalar(kind: int, numbers: dict[str, int] | None, value: Any) -> Any:
    if kind == _STRING:
        if type(value) is not str or (not value.isascii() and _SURROGATE.search(value)):
            raise _GiveUp
        return value
    if kind == _INT:
        if type(value) is not int:
            raise _GiveUp
        return value
    if kind == _BOOL:
        if type(value) is not bool:
            raise _GiveUp
        return value
    if type(value) is not str or numbers is None or value not in numbers:
        raise _GiveUp
    return numbers[value]

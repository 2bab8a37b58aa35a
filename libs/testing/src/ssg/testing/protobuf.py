"""Hypothesis strategies that build any protobuf message from its descriptor (for fuzzing APIs).

``messages(SomeRequest)`` draws instances of SomeRequest: every scalar type with its edge values,
enums including numbers the schema does not know, repeated and map fields, nested messages down
to a depth limit, at most one member of each oneof, and well-known types (Timestamp, Duration)
mostly inside their valid range but sometimes far outside it. Strings mix arbitrary text with
plausible values (ids, country codes, dates, URLs) so that generated requests get past the first
validation and reach the rules behind it.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Callable
from types import ModuleType
from typing import Any

from google.protobuf.descriptor import (
    Descriptor,
    EnumDescriptor,
    FieldDescriptor,
    ServiceDescriptor,
)
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

INT32 = (-(2**31), 2**31 - 1)
UINT32 = (0, 2**32 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT64 = (0, 2**64 - 1)
# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)
# google.protobuf.Duration's valid range: about +-10,000 years.
DURATION_SECONDS = (-315_576_000_000, 315_576_000_000)
NANOS = (0, 999_999_999)
FLOAT_EDGES = (0.0, -0.0, 1.0, -1.0, math.nan, math.inf, -math.inf, 3.4e38, 1e-45)

# Values a caller plausibly sends, so that some requests pass format checks.
PLAUSIBLE_TEXT = (
    "",
    " ",
    "en",
    "fr",
    "KEN",
    "BRA",
    "XXX",
    "ke",
    "6.1",
    "17.18",
    "99.99",
    "2021-03-01",
    "2024-02-30",
    "0000-00-00",
    "global",
    "africa",
    "00000000-0000-0000-0000-000000000000",
    "6f1d3c0e-2b8a-5e4f-9c71-4a0d5b9e8f21",
    "0123456789abcdef0123456789abcdef",
    "a@example.org",
    "https://example.org/hook",
    "http://127.0.0.1:1/",
    "solution",
    "-1",
    "NaN",
    "${jndi:x}",
    "'; db.dropDatabase(); '",
    '{"$gt": ""}',
    "$where",
    "a.b",
    "\x00",
    "\u202e\u0301",
    "\U0001d518\U0001d52b",  # astral-plane letters (4 UTF-8 bytes each)
)
LONG_TEXT_SIZES = (257, 4_097, 70_000)


def integers(low: int, high: int) -> st.SearchStrategy[int]:
    """Integers in [low, high], with the edges, zero and one drawn often."""
    edges = sorted({v for v in (low, high, 0, 1, -1, low + 1, high - 1) if low <= v <= high})
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def texts() -> st.SearchStrategy[str]:
    """Arbitrary text, plausible values and a few very long strings."""
    return st.one_of(
        st.text(max_size=40),
        st.sampled_from(PLAUSIBLE_TEXT),
        st.sampled_from(LONG_TEXT_SIZES).map(lambda n: "x" * n),
    )


def enum_numbers(enum: EnumDescriptor) -> st.SearchStrategy[int]:
    """Known numbers of enum, and for an open enum also numbers it does not define."""
    known = st.sampled_from([value.number for value in enum.values])
    if enum.is_closed:
        return known  # a closed (proto2) enum field cannot hold an unknown number in Python
    return st.one_of(known, integers(*INT32))


_INTEGER_RANGES: dict[int, tuple[int, int]] = {
    FieldDescriptor.TYPE_INT32: INT32,
    FieldDescriptor.TYPE_SINT32: INT32,
    FieldDescriptor.TYPE_SFIXED32: INT32,
    FieldDescriptor.TYPE_UINT32: UINT32,
    FieldDescriptor.TYPE_FIXED32: UINT32,
    FieldDescriptor.TYPE_INT64: INT64,
    FieldDescriptor.TYPE_SINT64: INT64,
    FieldDescriptor.TYPE_SFIXED64: INT64,
    FieldDescriptor.TYPE_UINT64: UINT64,
    FieldDescriptor.TYPE_FIXED64: UINT64,
}


def scalars(
    field: FieldDescriptor, strings: st.SearchStrategy[str] | None = None
) -> st.SearchStrategy[Any]:
    """Values of one non-message field (its element type when repeated); strings for text."""
    kind = field.type
    if kind in _INTEGER_RANGES:
        return integers(*_INTEGER_RANGES[kind])
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.one_of(st.sampled_from(FLOAT_EDGES), st.floats(width=32))
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.one_of(st.sampled_from(FLOAT_EDGES), st.floats())
    if kind == FieldDescriptor.TYPE_STRING:
        return strings if strings is not None else texts()
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None, field.full_name
        return enum_numbers(field.enum_type)
    raise TypeError(f"{field.full_name}: not a scalar field (type {kind})")


def _seconds_and_nanos(
    descriptor: Descriptor, valid: tuple[int, int]
) -> st.SearchStrategy[Message]:
    """Timestamp/Duration: mostly valid, sometimes out of range or with bad nanos."""
    cls = GetMessageClass(descriptor)
    seconds = st.one_of(integers(*valid), integers(*valid), integers(*INT64))
    nanos = st.one_of(integers(*NANOS), integers(*NANOS), integers(*INT32))
    return st.builds(lambda s, n: cls(seconds=s, nanos=n), seconds, nanos)


_WELL_KNOWN: dict[str, Callable[[Descriptor], st.SearchStrategy[Message]]] = {
    "google.protobuf.Timestamp": lambda d: _seconds_and_nanos(d, TIMESTAMP_SECONDS),
    "google.protobuf.Duration": lambda d: _seconds_and_nanos(d, DURATION_SECONDS),
}


class _Builder:
    """Strategies for one (max_depth, max_size) setting; each message type built once per depth."""

    def __init__(self, max_depth: int, max_size: int, strings: st.SearchStrategy[str]) -> None:
        self.max_depth = max_depth
        self.max_size = max_size
        self.strings = strings
        self._cache: dict[tuple[str, int], st.SearchStrategy[Message]] = {}

    def message(self, descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
        """Instances of descriptor's message at nesting depth (empty ones past the limit)."""
        key = (descriptor.full_name, depth)
        if key not in self._cache:
            self._cache[key] = st.deferred(lambda: self._build(descriptor, depth))
        return self._cache[key]

    def _build(self, descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
        cls = GetMessageClass(descriptor)
        if (special := _WELL_KNOWN.get(descriptor.full_name)) is not None:
            return special(descriptor)
        if depth >= self.max_depth:
            return st.builds(cls)
        plain = [f for f in descriptor.fields if _real_oneof(f) is None]
        oneofs = [o for o in descriptor.oneofs if not _synthetic(o)]
        field_values = {f.name: self._field(f, depth) for f in plain}
        oneof_values = [
            st.one_of(
                st.none(),
                *(st.tuples(st.just(f), self._field(f, depth)) for f in oneof.fields),
            )
            for oneof in oneofs
        ]

        @st.composite
        def build(draw: st.DrawFn) -> Message:
            message = cls()
            for field in plain:
                # Each field is left unset about half of the time (presence matters too).
                if draw(st.booleans()):
                    _assign(message, field, draw(field_values[field.name]))
            for choice in oneof_values:
                if (chosen := draw(choice)) is not None:
                    _assign(message, chosen[0], chosen[1])
            return message

        return build()

    def _field(self, field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
        if is_map(field):
            entry = _nested(field)
            keys = self._single(entry.fields_by_name["key"], depth + 1)
            values = self._single(entry.fields_by_name["value"], depth + 1)
            return st.dictionaries(keys, values, max_size=self.max_size)
        element = self._single(field, depth)
        if field.is_repeated:
            return st.lists(element, max_size=self.max_size)
        return element

    def _single(self, field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
        if field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
            return self.message(_nested(field), depth + 1)
        return scalars(field, self.strings)


def _synthetic(oneof: Any) -> bool:
    """A proto3 ``optional`` field's own oneof (not a real choice between fields)."""
    return bool(getattr(oneof, "is_synthetic", False)) or (
        len(oneof.fields) == 1 and oneof.fields[0].has_presence and oneof.name.startswith("_")
    )


def _real_oneof(field: FieldDescriptor) -> Any:
    oneof = field.containing_oneof
    return None if oneof is None or _synthetic(oneof) else oneof


def _nested(field: FieldDescriptor) -> Descriptor:
    """The message type of a message field."""
    assert field.message_type is not None, field.full_name
    return field.message_type


def is_map(field: FieldDescriptor) -> bool:
    """True for a ``map<K, V>`` field (a repeated field of a map-entry message)."""
    return (
        field.is_repeated
        and field.type == FieldDescriptor.TYPE_MESSAGE
        and bool(_nested(field).GetOptions().map_entry)
    )


def _assign(message: Message, field: FieldDescriptor, value: Any) -> None:
    """Put value into message's field, whatever its shape."""
    target = getattr(message, field.name)
    if is_map(field):
        value_field = _nested(field).fields_by_name["value"]
        for key, item in value.items():
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                target[key].CopyFrom(item)
            else:
                target[key] = item
    elif field.is_repeated:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value:
                target.add().CopyFrom(item)
        else:
            target.extend(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        target.CopyFrom(value)
    else:
        setattr(message, field.name, value)


def messages(
    message_type: type[Message] | Descriptor,
    *,
    max_depth: int = 4,
    max_size: int = 3,
    strings: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[Message]:
    """Instances of a message class (or descriptor), nested at most max_depth levels.

    strings replaces ``texts()`` for string fields, e.g. to mix in ids that exist on a server.
    """
    descriptor: Any = (
        message_type if isinstance(message_type, Descriptor) else message_type.DESCRIPTOR
    )
    return _Builder(max_depth, max_size, strings if strings is not None else texts()).message(
        descriptor, 0
    )


def service_descriptors(package: ModuleType) -> list[ServiceDescriptor]:
    """Every gRPC service declared by the ``*_pb2`` modules under package, by full name."""
    found: dict[str, ServiceDescriptor] = {}
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(info.name)
            for service in module.DESCRIPTOR.services_by_name.values():
                found[service.full_name] = service
    return [found[name] for name in sorted(found)]

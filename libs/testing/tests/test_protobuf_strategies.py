"""The descriptor-driven hypothesis strategy draws valid messages of every shape a schema allows."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ssg.contracts
from ssg.testing.protobuf import (
    INT64,
    TIMESTAMP_SECONDS,
    UINT64,
    integers,
    messages,
    scalars,
    service_descriptors,
)

F = descriptor_pb2.FieldDescriptorProto
DRAWS = 300


def _field(name: str, number: int, kind: int, *, label: int = F.LABEL_OPTIONAL, **extra: Any) -> F:
    return F(name=name, number=number, type=kind, label=label, **extra)  # type: ignore[arg-type]


def _sample_file() -> descriptor_pb2.FileDescriptorProto:
    """A proto3 file using every feature the strategy handles."""
    file = descriptor_pb2.FileDescriptorProto(
        name="fuzz_sample.proto",
        package="fuzz.sample",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )
    file.enum_type.add(name="Colour").value.extend(
        [
            descriptor_pb2.EnumValueDescriptorProto(name="COLOUR_UNSPECIFIED", number=0),
            descriptor_pb2.EnumValueDescriptorProto(name="COLOUR_RED", number=1),
        ]
    )
    node = file.message_type.add(name="Node")
    node.field.extend(
        [
            _field("label", 1, F.TYPE_STRING),
            _field("child", 2, F.TYPE_MESSAGE, type_name=".fuzz.sample.Node"),
        ]
    )
    sample = file.message_type.add(name="Sample")
    scalar_types = {
        "i32": F.TYPE_INT32,
        "s32": F.TYPE_SINT32,
        "u32": F.TYPE_UINT32,
        "f32": F.TYPE_FIXED32,
        "i64": F.TYPE_INT64,
        "u64": F.TYPE_UINT64,
        "sf64": F.TYPE_SFIXED64,
        "flt": F.TYPE_FLOAT,
        "dbl": F.TYPE_DOUBLE,
        "flag": F.TYPE_BOOL,
        "text": F.TYPE_STRING,
        "blob": F.TYPE_BYTES,
    }
    for number, (name, kind) in enumerate(scalar_types.items(), start=1):
        sample.field.append(_field(name, number, kind))
    sample.field.extend(
        [
            _field("colour", 20, F.TYPE_ENUM, type_name=".fuzz.sample.Colour"),
            _field("tags", 21, F.TYPE_STRING, label=F.LABEL_REPEATED),
            _field("node", 22, F.TYPE_MESSAGE, type_name=".fuzz.sample.Node"),
            _field("when", 23, F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp"),
            _field("by_name", 24, F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                   type_name=".fuzz.sample.Sample.ByNameEntry"),
            _field("nodes_by_id", 25, F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                   type_name=".fuzz.sample.Sample.NodesByIdEntry"),
            _field("as_text", 26, F.TYPE_STRING, oneof_index=0),
            _field("as_number", 27, F.TYPE_INT64, oneof_index=0),
            _field("as_node", 28, F.TYPE_MESSAGE, oneof_index=0, type_name=".fuzz.sample.Node"),
            _field("maybe", 29, F.TYPE_INT32, oneof_index=1, proto3_optional=True),
        ]
    )  # fmt: skip
    sample.oneof_decl.add(name="choice")
    sample.oneof_decl.add(name="_maybe")
    for entry_name, key, value in (
        ("ByNameEntry", _field("key", 1, F.TYPE_STRING), _field("value", 2, F.TYPE_INT32)),
        (
            "NodesByIdEntry",
            _field("key", 1, F.TYPE_INT64),
            _field("value", 2, F.TYPE_MESSAGE, type_name=".fuzz.sample.Node"),
        ),
    ):
        entry = sample.nested_type.add(name=entry_name)
        entry.field.extend([key, value])
        entry.options.map_entry = True
    return file


def _sample_class() -> type[Message]:
    pool = descriptor_pool.DescriptorPool()
    ts = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(ts)
    pool.Add(ts)
    pool.Add(_sample_file())
    return GetMessageClass(pool.FindMessageTypeByName("fuzz.sample.Sample"))


SAMPLE = _sample_class()


def drawn(strategy: st.SearchStrategy[Any], count: int = DRAWS) -> list[Any]:
    """count values of strategy, the same ones on every run."""
    found: list[Any] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


SAMPLES: list[Any] = drawn(messages(SAMPLE))


def share(predicate: Callable[[Any], bool], values: list[Any] = SAMPLES) -> float:
    return sum(1 for v in values if predicate(v)) / len(values)


def _depth(node: Message) -> int:
    return 1 + _depth(node.child) if node.HasField("child") else 0  # type: ignore[attr-defined]


def test_every_drawn_message_round_trips_through_the_wire_format() -> None:
    for message in SAMPLES:
        assert type(message).FromString(message.SerializeToString()) == message


def test_scalars_reach_their_edge_values() -> None:
    fields: Any = SAMPLE.DESCRIPTOR.fields_by_name

    def values(name: str) -> set[Any]:
        return set(drawn(scalars(fields[name]), 200))

    assert {INT64[0], INT64[1]} <= values("i64")
    assert UINT64[1] in values("u64")
    assert 2**31 - 1 in values("i32")
    floats = values("flt")
    assert any(f != f for f in floats) and {math.inf, -math.inf} <= floats
    assert any(len(t) > 1000 for t in values("text"))
    assert any(len(b) > 10 for b in values("blob"))
    # and they reach the messages
    assert any(m.i64 for m in SAMPLES) and any(m.text for m in SAMPLES)


def test_open_enums_get_known_and_unknown_numbers() -> None:
    colours = {m.colour for m in SAMPLES}
    assert {0, 1} <= colours
    assert colours - {0, 1}, "no number the enum does not define"


def test_fields_are_sometimes_set_and_sometimes_not() -> None:
    for name in ("node", "when", "maybe"):
        present = [m.HasField(name) for m in SAMPLES]
        assert 0.2 < sum(present) / len(present) < 0.8, name
    assert 0 < share(lambda m: len(m.tags) > 1) < 1


def test_a_oneof_holds_at_most_one_member_and_each_member_appears() -> None:
    chosen = [m.WhichOneof("choice") for m in SAMPLES]
    assert {None, "as_text", "as_number", "as_node"} <= set(chosen)


def test_maps_get_entries_of_their_key_and_value_types() -> None:
    assert any(len(m.by_name) > 0 for m in SAMPLES)
    nodes = [node for m in SAMPLES for node in m.nodes_by_id.values()]
    assert nodes and any(node.label for node in nodes)


def test_timestamps_are_mostly_valid_and_sometimes_out_of_range() -> None:
    stamps = [m.when for m in SAMPLES if m.HasField("when")]
    low, high = TIMESTAMP_SECONDS

    def valid(t: timestamp_pb2.Timestamp) -> bool:
        return low <= t.seconds <= high and 0 <= t.nanos <= 999_999_999

    assert share(valid, stamps) > 0.3
    assert share(valid, stamps) < 1


def test_recursion_stops_at_the_depth_limit() -> None:
    for message in drawn(messages(SAMPLE, max_depth=2), 100):
        assert _depth(message.node) <= 1  # Sample -> node -> (empty) child
    deep = drawn(messages(SAMPLE, max_depth=6), 200)
    assert max(_depth(m.node) for m in deep) >= 2


def test_well_known_recursive_types_are_drawn_too() -> None:
    values = drawn(messages(struct_pb2.Value, max_depth=3), 100)
    kinds = {v.WhichOneof("kind") for v in values}
    assert {"struct_value", "list_value", "string_value"} <= kinds


def test_strings_can_be_replaced_by_the_callers_pool() -> None:
    for message in drawn(messages(SAMPLE, strings=st.sampled_from(["a", "b"])), 50):
        assert message.text in ("", "a", "b")
        assert set(message.tags) <= {"a", "b"}


def test_integers_draws_stay_in_range() -> None:
    assert all(-3 <= i <= 5 for i in drawn(integers(-3, 5), 50))


def test_every_service_of_the_contracts_is_found() -> None:
    names = {service.full_name for service in service_descriptors(ssg.contracts)}
    assert {
        "ssg.catalog.v1.CatalogService",
        "ssg.registration.v1.RegistrationService",
        "ssg.diagnostics.v1.DiagnosticsService",
    } <= names
    assert all(name.startswith("ssg.") for name in names)

"""A fuzz pass over every gRPC method of the platform on the session's local stack.

Every RPC declared under ``ssg.contracts`` (found from the descriptors, so a new RPC is fuzzed
without editing this file) gets hypothesis-generated requests, each sent without a token and
with a valid bearer token of drawn roles, and raw garbage bytes as its request body. Every
answer must be a deliberate status (OK, INVALID_ARGUMENT, NOT_FOUND, ...), never UNKNOWN,
INTERNAL or a hang, and every process of the stack must still be up and healthy afterwards.
A failure names the RPC, the code, and the smallest set of request fields that still fails.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import text_format
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import ssg.contracts
from ssg.cli.config import load_stack_config
from ssg.cli.status import check_all
from ssg.platform.auth.tokens import DevTokenIssuer, Role
from ssg.testing.liveness import restarted_or_gone, start_times
from ssg.testing.protobuf import PLAUSIBLE_TEXT, is_map, messages, service_descriptors, texts

from .conftest import LocalStack

EXAMPLES = 12  # generated requests per RPC, each sent twice (with and without a token)
GARBAGE_EXAMPLES = 4  # random bodies per RPC, on top of the fixed ones below
# Generous: the first SuggestSdgs after the catalog changed fits its classifier inside the call,
# which takes many seconds on a busy 2-core machine.
CALL_TIMEOUT = 60.0
SHRINK_SECONDS = 60.0  # spent at most on narrowing a failing request down
ISSUER = DevTokenIssuer()

# Statuses a server gives on purpose. UNKNOWN and INTERNAL mean an unhandled exception;
# DEADLINE_EXCEEDED a hang; UNAVAILABLE a dead process; UNIMPLEMENTED an RPC the proto declares
# and the service does not serve.
DELIBERATE = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

# Bodies that are not the request message: truncated, wrong wire types, absurd lengths.
FIXED_GARBAGE = (
    b"\xff",
    b"\x0a",  # field 1, length-delimited, no length
    b"\x0a\xff\xff\xff\xff\x0f",  # field 1 claims a 4 GiB string
    b"\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",  # an 11-byte varint
    b"\x0f\x00",  # wire type 7 does not exist
    b"\x0b\x0c",  # a group that ends as another one
    b"\x00\x00\x00\x00",  # field number 0
    b"\x12\x02\xc3\x28",  # field 2 as a string of invalid UTF-8
)


@dataclass(frozen=True)
class Rpc:
    """One method of a service, and the stack process that serves it."""

    process: str
    method: MethodDescriptor

    @property
    def path(self) -> str:
        """The method path, ``/ssg.catalog.v1.CatalogService/GetSolution``."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    def request_class(self) -> type[Message]:
        """The request message class."""
        return GetMessageClass(self.method.input_type)


def process_of(service_full_name: str) -> str:
    """The stack process serving a service: ``ssg.catalog.v1.CatalogService`` -> ``catalog``."""
    return service_full_name.split(".")[1]


def discovered_rpcs() -> list[Rpc]:
    """Every RPC of every service the contracts declare."""
    return [
        Rpc(process_of(service.full_name), method)
        for service in service_descriptors(ssg.contracts)
        for method in service.methods
    ]


RPCS = discovered_rpcs()


# (method, status) -> answers seen, printed at the end: shows how far the requests got.
ANSWERS: Counter[tuple[str, str]] = Counter()


class Improper(AssertionError):
    """A call answered with a status no server gives on purpose."""


def call(channel: grpc.Channel, rpc: Rpc, body: bytes, metadata: tuple) -> grpc.StatusCode:
    """Send body as rpc's request (bytes in, bytes out); the status code of the answer."""
    unary = channel.unary_unary(rpc.path, request_serializer=None, response_deserializer=None)
    try:
        reply = unary(body, metadata=metadata, timeout=CALL_TIMEOUT)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        ANSWERS[rpc.method.name, code.name] += 1
        if code not in DELIBERATE:
            raise Improper(f"{rpc.path}: {code.name}: {exc.details()}") from None
        return code
    # An OK answer must be the declared response message.
    GetMessageClass(rpc.method.output_type).FromString(reply)
    ANSWERS[rpc.method.name, "OK"] += 1
    return grpc.StatusCode.OK


def smallest_failing(
    channel: grpc.Channel, rpc: Rpc, request: Message, metadata: tuple, budget: int = 80
) -> Message:
    """request with every field cleared whose absence still gives an improper status.

    Greedy, field by field and then inside the message fields left: what remains names the
    field(s) the server fails on. Bounded by budget calls and SHRINK_SECONDS.
    """
    smallest = type(request)()
    smallest.CopyFrom(request)
    calls = 0
    give_up = time.monotonic() + SHRINK_SECONDS

    def fails() -> bool:
        nonlocal calls
        calls += 1
        if time.monotonic() > give_up:
            return True  # out of time: keep the field (the answer stays a failing request)
        try:
            call(channel, rpc, smallest.SerializeToString(), metadata)
        except Improper:
            return True
        return False

    def shrink(message: Message) -> None:
        for field, _ in list(message.ListFields()):
            if calls >= budget:
                return
            saved = type(message)()
            saved.CopyFrom(message)
            message.ClearField(field.name)
            if not fails():
                message.CopyFrom(saved)
        for field, value in list(message.ListFields()):
            if field.type != FieldDescriptor.TYPE_MESSAGE:
                continue
            if field.is_repeated:
                if not is_map(field):
                    for item in value:
                        shrink(item)
            else:
                shrink(value)

    shrink(smallest)
    return smallest


def ids_in(message: Message) -> set[str]:
    """Values of the string fields named ``id`` or ``*_id`` anywhere in message."""
    found: set[str] = set()
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_STRING and (
            field.name == "id" or field.name.endswith("_id")
        ):
            found |= set(value) if field.is_repeated else {value}
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            items = value.values() if is_map(field) else value if field.is_repeated else [value]
            found |= {i for item in items if isinstance(item, Message) for i in ids_in(item)}
    return found


@dataclass(frozen=True)
class Known:
    """What exists on the stack: ids, and messages by type (e.g. every Solution listed)."""

    ids: list[str]
    examples: dict[str, list[Message]]


def messages_in(message: Message, into: dict[str, list[Message]]) -> None:
    """Add message and every message nested in it to into, by full type name."""
    into.setdefault(message.DESCRIPTOR.full_name, []).append(message)
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_MESSAGE and not is_map(field):
            for item in value if field.is_repeated else [value]:
                messages_in(item, into)


@pytest.fixture(scope="module")
def known(channels: dict[str, grpc.Channel]) -> Known:
    """What every List RPC shows an operator, so generated requests can aim at real things."""
    operator = (("authorization", f"Bearer {ISSUER.issue('fuzz-op', (Role.OPERATOR,))}"),)
    ids: set[str] = set()
    examples: dict[str, list[Message]] = {}
    for rpc in RPCS:
        if not rpc.method.name.startswith("List"):
            continue
        unary = channels[rpc.process].unary_unary(rpc.path)
        try:
            reply = unary(b"", metadata=operator, timeout=CALL_TIMEOUT)
        except grpc.RpcError:
            continue  # e.g. a List that needs a filter
        listed = GetMessageClass(rpc.method.output_type).FromString(reply)
        ids |= ids_in(listed)
        messages_in(listed, examples)
    return Known(sorted(ids)[:200], {k: v[:20] for k, v in sorted(examples.items())})


def overlay(base: Message, generated: Message, draw: st.DrawFn) -> None:
    """Replace one field of base (at some depth) by the generated message's value of it."""
    fields = generated.ListFields()
    if not fields:
        return
    field, value = draw(st.sampled_from(fields))
    nested = field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated
    if nested and base.HasField(field.name) and draw(st.booleans()):
        overlay(getattr(base, field.name), value, draw)
        return
    only = type(generated)()
    only.CopyFrom(generated)
    for other, _ in only.ListFields():
        if other.name != field.name:
            only.ClearField(other.name)
    base.ClearField(field.name)
    base.MergeFrom(only)


@st.composite
def requests_for(draw: st.DrawFn, rpc: Rpc, known: Known) -> Message:
    """A generated request, or half of the time one built from things that exist with one
    field replaced by a generated value (so the rules behind validation are reached)."""
    cls = rpc.request_class()
    generated = draw(messages(cls, strings=strings(known.ids)))
    if draw(st.booleans()):
        return generated
    base = cls()
    for field in cls.DESCRIPTOR.fields:
        if field.is_repeated:
            continue
        if field.message_type is not None:
            seeds = known.examples.get(field.message_type.full_name)
            if seeds:
                getattr(base, field.name).CopyFrom(draw(st.sampled_from(seeds)))
        elif (
            field.type == FieldDescriptor.TYPE_STRING
            and known.ids
            and (field.name == "id" or field.name.endswith("_id"))
        ):
            setattr(base, field.name, draw(st.sampled_from(known.ids)))
    overlay(base, generated, draw)
    return base


def strings(known: list[str]) -> st.SearchStrategy[str]:
    """Text for string fields: arbitrary, plausible, or an id that exists."""
    return st.one_of(texts(), st.sampled_from(known)) if known else texts()


def tokens(known: list[str]) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    """Metadata with a valid bearer token of drawn roles and organization."""
    roles = st.lists(st.sampled_from(list(Role)), min_size=1, max_size=3, unique=True)
    orgs = st.sampled_from(["", "demo-org", *PLAUSIBLE_TEXT[16:19], *known[:50]])
    return st.builds(
        lambda r, o, s: (
            ("authorization", f"Bearer {ISSUER.issue(s, tuple(r), organization_id=o)}"),
        ),
        roles,
        orgs,
        st.sampled_from(["fuzz-alice", "fuzz-bob", "x" * 300]),
    )


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same requests on every run, so CI is reproducible
    database=None,
    deadline=None,
    # The greedy field shrinker names the field; hypothesis' own would cost many more calls.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)


def metrics_ports(stack: LocalStack) -> dict[str, int]:
    """Process name -> its /metrics port, for every process of the stack."""
    return {name: entry["metrics"] for name, entry in stack.table()["services"].items()}


@pytest.fixture(scope="module", autouse=True)
def started_before(local_stack: LocalStack) -> dict[str, float]:
    """When each process of the stack started, taken before the fuzzing."""
    return start_times(local_stack.table()["host"], metrics_ports(local_stack))


@pytest.fixture(scope="module")
def channels(local_stack: LocalStack) -> Iterator[dict[str, grpc.Channel]]:
    """A blocking channel to every process with a gRPC API."""
    table = local_stack.table()
    opened = {
        name: grpc.insecure_channel(f"{table['host']}:{entry['grpc']}")
        for name, entry in table["services"].items()
        if "grpc" in entry
    }
    yield opened
    for channel in opened.values():
        channel.close()


@pytest.mark.timeout(900)  # the first test of the module may wait for the stack to start
def test_every_service_is_served_by_a_process_of_the_stack(local_stack: LocalStack) -> None:
    served = {name for name, entry in local_stack.table()["services"].items() if "grpc" in entry}
    assert len(RPCS) >= 60
    assert {rpc.process for rpc in RPCS} <= served


@pytest.mark.timeout(300)
@pytest.mark.parametrize("rpc", RPCS, ids=lambda rpc: rpc.path.lstrip("/"))
def test_generated_requests_get_a_deliberate_status(
    channels: dict[str, grpc.Channel], known: Known, rpc: Rpc
) -> None:
    channel = channels[rpc.process]

    @FUZZ_SETTINGS
    @given(request=requests_for(rpc, known), token=tokens(known.ids))
    def send(request: Message, token: tuple) -> None:
        for metadata in ((), token):
            try:
                call(channel, rpc, request.SerializeToString(), metadata)
            except Improper as exc:
                smallest = smallest_failing(channel, rpc, request, metadata)
                fields = text_format.MessageToString(smallest, as_utf8=True) or "(empty)"
                who = "with a token" if metadata else "anonymously"
                raise Improper(f"{exc}\n{who}, smallest failing request:\n{fields}") from None

    send()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("rpc", RPCS, ids=lambda rpc: rpc.path.lstrip("/"))
def test_garbage_bodies_get_a_deliberate_status(
    channels: dict[str, grpc.Channel], rpc: Rpc
) -> None:
    channel = channels[rpc.process]
    for body in FIXED_GARBAGE:
        call(channel, rpc, body, ())

    @settings(FUZZ_SETTINGS, max_examples=GARBAGE_EXAMPLES)
    @given(body=st.binary(min_size=1, max_size=200))
    def send(body: bytes) -> None:
        call(channel, rpc, body, ())

    send()


def test_malformed_authorization_headers_get_unauthenticated(
    channels: dict[str, grpc.Channel],
) -> None:
    rpc = next(r for r in RPCS if r.method.name == "WhoAmI")
    for header in ("Bearer", "Bearer not.a.jwt", "Basic Zm9vOmJhcg==", "bearer " + "x" * 5000):
        code = call(channels[rpc.process], rpc, b"", (("authorization", header),))
        assert code == grpc.StatusCode.UNAUTHENTICATED, header


def test_every_process_is_still_up_and_healthy(
    local_stack: LocalStack, started_before: dict[str, float]
) -> None:
    assert set(started_before) == set(metrics_ports(local_stack)), "a process was down before"
    after = start_times(local_stack.table()["host"], metrics_ports(local_stack))
    assert not restarted_or_gone(started_before, after), "a process crashed (restarted or gone)"
    down = [r for r in check_all(load_stack_config(local_stack.ports_file)) if not r.ok]
    assert not down, [f"{r.name}: {r.detail}" for r in down]
    by_code = Counter[str]()
    for (_, code), count in ANSWERS.items():
        by_code[code] += count
    print(f"fuzzed {len(RPCS)} RPCs: {sum(by_code.values())} answers {dict(by_code)}")

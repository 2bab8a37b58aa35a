"""Faults under load, on a local stack of this module's own (free ports, its own run directory
and RabbitMQ vhost, an SMTP and a webhook receiver), so the session's stack is never disturbed.

While the load mix runs at a fixed rate and a member keeps publishing solutions that match an
e-mail and a webhook subscription: every service process is killed with SIGKILL in turn (the
stack's supervisor restarts it), MongoDB is killed and restarted, and the RabbitMQ connections of
the stack's vhost are closed. Afterwards: every solution published is found by search, each was
notified exactly once per channel, no dead-letter topic or queue holds anything (nothing invalid
was sent), and every process answers its health checks. Recovery times are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kombu import Connection

from ssg.cli.config import ServiceEntry, StackConfig
from ssg.cli.status import check_server, check_service
from ssg.contracts.catalog.v1 import catalog_service_pb2 as cat
from ssg.contracts.catalog.v1 import catalog_service_pb2_grpc as cat_grpc
from ssg.contracts.catalog.v1 import solution_pb2
from ssg.contracts.common.v1 import sdg_pb2
from ssg.contracts.notifications.v1 import notifications_service_pb2 as notif
from ssg.contracts.notifications.v1 import notifications_service_pb2_grpc as notif_grpc
from ssg.contracts.notifications.v1 import subscription_pb2 as sub
from ssg.contracts.registration.v1 import registration_service_pb2_grpc as reg_grpc
from ssg.contracts.search.v1 import search_service_pb2 as srch
from ssg.contracts.search.v1 import search_service_pb2_grpc as srch_grpc
from ssg.platform.auth.tokens import Role
from ssg.testing.fixtures import load_script
from ssg.testing.rabbitmq import Vhost
from ssg.testing.receivers import HttpSink, SmtpSink, plain_text
from ssg.testing.waiting import eventually

from .conftest import ROOT, LocalStack, stack_instance
from .test_journey import REVIEWER, as_, once_accepted, passing_review, verified_organization

LOAD_RATE = 8.0  # calls of the load mix started per second
LOAD_CHUNK_SECONDS = 10.0
PUBLISH_EVERY = 2.0  # seconds between two solutions that go through to publication
RECOVERY_WITHIN = 120.0  # seconds a process has to come back healthy
KILL_EVERY = 3.0  # seconds between two process kills
POISON_TOPIC = "registration.organization-events.v1"  # consumed by several services' workers
INGRESS_DEAD_LETTERS = "ssg.ingress.dead-letter"
AMQP_PORT = 5672
TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
}


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory, amqp_url: str) -> Iterator[LocalStack]:
    """The whole stack of this module's own, without demo data: seeding takes minutes on a busy
    machine, and the test brings the data it needs (the load mix reads and writes its own)."""
    with stack_instance(
        tmp_path_factory.mktemp("fault-stack"), amqp_url, "ssg-faults", "--no-demo-data"
    ) as stack:
        yield stack


# -- health ---------------------------------------------------------------------------------


def healthz(config: StackConfig, entry: ServiceEntry) -> bool:
    """GET /healthz of a process answers 200."""
    url = f"http://{config.host}:{entry.metrics_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def process_healthy(config: StackConfig, entry: ServiceEntry) -> bool:
    """gRPC health SERVING (a process with an API) or /metrics, and /healthz 200."""
    return check_service(config, entry, 2.0).up and healthz(config, entry)


async def restarted_and_healthy(stack: LocalStack, process: str, killed: int) -> bool:
    """A new pid runs process and it answers its health checks."""
    if stack.pid(process) in (None, killed):
        return False
    if process == "mongodb":
        return await asyncio.to_thread(lambda: check_server(stack.config, "mongodb", 2.0).up)
    return await asyncio.to_thread(process_healthy, stack.config, stack.entry(process))


async def kill_and_recover(stack: LocalStack, process: str) -> float:
    """SIGKILL a process; seconds until its restart is healthy."""
    killed = stack.pid(process)
    assert killed is not None, f"no pid for {process}"
    os.kill(killed, signal.SIGKILL)
    began = time.monotonic()
    await eventually(
        lambda: restarted_and_healthy(stack, process, killed),
        f"{process} to be restarted and healthy",
        within=RECOVERY_WITHIN,
        interval=0.2,
    )
    return time.monotonic() - began


def amqp_sockets(pid: int) -> set[str]:
    """Inodes of the established TCP connections of a process to RabbitMQ's port (/proc)."""
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return set()
    sockets = {link[8:-1] for link in links if link.startswith("socket:[")}
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                cols = row.split()
                remote_port, state, inode = int(cols[2].rsplit(":", 1)[1], 16), cols[3], cols[9]
                if remote_port == AMQP_PORT and state == "01" and inode in sockets:
                    found.add(inode)
    return found


async def drop_rabbitmq_connections(stack: LocalStack) -> tuple[int, float]:
    """Close every connection of the stack's vhost; (closed, seconds from the first close until
    each process that had one is connected again and healthy)."""
    names = [e.name for e in stack.config.services]
    old = {n: amqp_sockets(stack.pid(n) or 0) for n in names}
    users = [n for n in names if old[n]]
    began = time.monotonic()
    closed = await asyncio.to_thread(stack.vhost.close_connections, "fault test")

    async def back() -> bool:
        # A connection opened after the drop, in each process that had one.
        if not all(amqp_sockets(stack.pid(n) or 0) - old[n] for n in users):
            return False
        checks = [asyncio.to_thread(healthz, stack.config, stack.entry(n)) for n in users]
        return all(await asyncio.gather(*checks))

    await eventually(back, f"{', '.join(users)} to reconnect to RabbitMQ", within=RECOVERY_WITHIN)
    print(f"RabbitMQ users: {users}")
    return closed, time.monotonic() - began


# -- traffic ----------------------------------------------------------------------------------


async def retried(call: Callable[[], Awaitable[Any]], done_if_refused: bool = False) -> Any:
    """call() until it is answered; a refusal after a lost answer means it was applied."""
    deadline = time.monotonic() + RECOVERY_WITHIN
    attempts = 0
    while True:
        attempts += 1
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            applied = exc.code() == grpc.StatusCode.FAILED_PRECONDITION and attempts > 1
            if applied and done_if_refused:
                return None
            if exc.code() not in TRANSIENT or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.5)


@dataclass
class Publisher:
    """A member who keeps writing solutions that a reviewer reviews and publishes."""

    catalog: Any
    organization: str
    word: str
    published: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    started: int = 0

    def solution(self, n: int) -> solution_pb2.Solution:
        """The n-th solution: its title carries the run's word (subscriptions filter on it)."""
        return solution_pb2.Solution(
            organization_id=self.organization,
            title=f"Solar pump cooperative {self.word} number {n}",
            summary=f"Farmers share solar irrigation pumps ({self.word}).",
            approach="Pumps bought together, repaired by trained members.",
            sdgs=[sdg_pb2.SDG_AFFORDABLE_AND_CLEAN_ENERGY],
            implementing_countries=["GHA"],
            modality=solution_pb2.COOPERATION_MODALITY_SOUTH_SOUTH,
            period=solution_pb2.Period(start_date="2022-01-01", end_date="2024-12-31"),
            language="en",
        )

    async def publish(self, n: int) -> None:
        """Create, submit, review and publish the n-th solution, retrying through outages."""
        member = as_(f"faults-member-{self.word}", Role.MEMBER, org=self.organization)
        try:
            made = await retried(
                lambda: self.catalog.CreateSolution(
                    cat.CreateSolutionRequest(solution=self.solution(n)), metadata=member, timeout=5
                )
            )
            sid = made.solution.id
            steps: list[Callable[[], Awaitable[Any]]] = [
                lambda: self.catalog.SubmitSolution(
                    cat.SubmitSolutionRequest(id=sid), metadata=member, timeout=5
                ),
                lambda: self.catalog.StartSolutionReview(
                    cat.StartSolutionReviewRequest(id=sid), metadata=REVIEWER, timeout=5
                ),
                lambda: self.catalog.ReviewSolution(
                    cat.ReviewSolutionRequest(id=sid, review=passing_review()),
                    metadata=REVIEWER,
                    timeout=5,
                ),
                lambda: self.catalog.PublishSolution(
                    cat.PublishSolutionRequest(id=sid), metadata=REVIEWER, timeout=5
                ),
            ]
            for step in steps:
                await retried(step, done_if_refused=True)
        except grpc.aio.AioRpcError as exc:
            self.failed.append(f"solution {n}: {exc.code().name} {exc.details()}")
            return
        self.published.append(sid)

    async def run(self, stop: asyncio.Event) -> None:
        """Start one publication every PUBLISH_EVERY seconds until stop; wait for them all."""
        tasks = []
        while not stop.is_set():
            tasks.append(asyncio.create_task(self.publish(self.started)))
            self.started += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PUBLISH_EVERY)
        await asyncio.gather(*tasks)


async def load_until(stop: asyncio.Event, addresses: dict[str, str]) -> Counter[str]:
    """The load mix in chunks until stop; failed calls by status (and failed chunk starts)."""
    tool = load_script(ROOT / "tests" / "load" / "load_mix.py", "ssg_load_mix")
    errors: Counter[str] = Counter()
    while not stop.is_set():
        try:
            report = await tool.run(addresses, LOAD_RATE, LOAD_CHUNK_SECONDS)
        except grpc.aio.AioRpcError as exc:  # the mix's set-up read met an outage
            errors[f"set-up {exc.code().name}"] += 1
            await asyncio.sleep(0.5)
            continue
        for kind in report.kinds:
            errors.update(kind.errors)
            for code, why in kind.error_details.items():
                print(f"load {kind.name} {code}: {why[:160]}")
    return errors


# -- what is left afterwards ------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic."""

    topic: str
    key: bytes | None
    headers: dict[str, bytes]


async def send_kafka_poison(bootstrap: str, topic: str, key: bytes) -> None:
    """A record that is not an event envelope at all, onto topic."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"\x00 not an envelope", key=key)
    finally:
        await producer.stop()


async def kafka_dead_letters(bootstrap: str) -> tuple[list[str], list[DeadLetter]]:
    """The dead-letter topics and every record they hold (all partitions, from the start)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        topics = sorted(t for t in await consumer.topics() if t.endswith(".dlq"))
        partitions = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        ends = await consumer.end_offsets(partitions)
        holding = [tp for tp in partitions if ends[tp] > 0]
        letters: list[DeadLetter] = []
        if not holding:
            return topics, letters
        consumer.assign(holding)
        await consumer.seek_to_beginning(*holding)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in holding]
            if all(pos >= ends[tp] for pos, tp in zip(positions, holding, strict=True)):
                break
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                letters += [DeadLetter(tp.topic, r.key, dict(r.headers)) for r in records]
        return topics, letters
    finally:
        await consumer.stop()


def send_amqp_poison(vhost: Vhost, message_id: str) -> None:
    """A message to the ingress exchange that is not JSON, as the stack's RabbitMQ user."""
    with Connection(vhost.url(), transport_options={"confirm_publish": True}) as connection:
        connection.Producer().publish(
            b"{not json",
            exchange="ssg.ingress",
            routing_key="solution.proposed",
            content_type="application/json",
            content_encoding="binary",
            user_id="guest",
            message_id=message_id,
            delivery_mode=2,
            retry=True,
        )


async def all_ids(call: Callable[..., Awaitable[Any]], request: Any, items: str) -> set[str]:
    """Ids of every item of every page that call answers request with."""
    request.page.page_size = 100
    ids: set[str] = set()
    while True:
        reply = await call(request, timeout=10)
        ids.update(item.id for item in getattr(reply, items))
        if not reply.page.next_page_token:
            return ids
        request.page.page_token = reply.page.next_page_token


async def published_by(catalog: Any, organization: str) -> set[str]:
    """Ids of the organization's published solutions, as the catalog lists them."""
    request = cat.ListSolutionsRequest(organization_id=organization)
    return await all_ids(catalog.ListSolutions, request, "solutions")


async def searchable(search: Any, word: str) -> set[str]:
    """Ids of the solutions that search finds by the run's word."""
    request = srch.SearchRequest(
        query=word, filters=srch.SearchFilters(entity_types=[srch.ENTITY_TYPE_SOLUTION])
    )
    return await all_ids(search.Search, request, "hits")


def webhook_items(http: HttpSink, path: str) -> Counter[str]:
    """How many times each solution id reached the webhook receiver."""
    return Counter(json.loads(r.body)["item"]["id"] for r in http.at(path))


def emailed_items(smtp: SmtpSink, address: str, ids: set[str]) -> Counter[str]:
    """How many times each of ids was e-mailed to address (found in the message's text)."""
    counts: Counter[str] = Counter()
    for message in smtp.to(address):
        text = plain_text(message)
        counts.update(sid for sid in ids if sid in text)
    return counts


# -- the test -------------------------------------------------------------------------------


@pytest.mark.timeout(1500)
async def test_nothing_is_lost_when_processes_mongodb_and_rabbitmq_fail_under_load(
    fault_stack: LocalStack,
) -> None:
    stack = fault_stack
    tool = load_script(ROOT / "tests" / "load" / "load_mix.py", "ssg_load_mix")
    addresses = tool.addresses_from(stack.ports_file)
    word = f"drill{uuid.uuid4().hex[:8]}"
    inbox, hook = f"{word}@example.org", f"/{word}"
    async with (
        grpc.aio.insecure_channel(stack.grpc_address("registration")) as reg_channel,
        grpc.aio.insecure_channel(stack.grpc_address("catalog")) as cat_channel,
        grpc.aio.insecure_channel(stack.grpc_address("search")) as search_channel,
        grpc.aio.insecure_channel(stack.grpc_address("notifications")) as notif_channel,
    ):
        registration = reg_grpc.RegistrationServiceStub(reg_channel)
        catalog = cat_grpc.CatalogServiceStub(cat_channel)
        search = srch_grpc.SearchServiceStub(search_channel)
        notifications = notif_grpc.NotificationServiceStub(notif_channel)

        provider = await verified_organization(registration, f"Solar Pump Union {word}", "GHA")
        reader = as_(f"reader-{word}")
        for channel, address in (
            (sub.CHANNEL_EMAIL, inbox),
            (sub.CHANNEL_WEBHOOK, stack.http.url(hook)),
        ):
            await notifications.Subscribe(
                notif.SubscribeRequest(
                    subscription=sub.Subscription(
                        channel=channel,
                        address=address,
                        topics=[sub.TOPIC_SOLUTIONS],
                        keywords=[word],
                        frequency=sub.FREQUENCY_INSTANT,
                        language="en",
                    )
                ),
                metadata=reader,
                timeout=10,
            )
        publisher = Publisher(catalog, provider, word)
        member = as_(f"faults-member-{word}", Role.MEMBER, org=provider)
        await once_accepted(
            lambda: catalog.CreateSolution(
                cat.CreateSolutionRequest(solution=publisher.solution(-1)),
                metadata=member,
                timeout=10,
            ),
            "the catalog to know the verified provider",
        )
        # Published solutions for the load mix to read before any fault.
        for _ in range(3):
            await publisher.publish(publisher.started)
            publisher.started += 1
        assert len(publisher.published) == 3, publisher.failed

        # Deliberate poison, sent once each: it, and only it, must end in the dead letters.
        poison_key = f"poison-{word}".encode()
        await send_kafka_poison(stack.config.kafka_bootstrap, POISON_TOPIC, poison_key)
        await asyncio.to_thread(send_amqp_poison, stack.vhost, f"poison-{word}")

        stop = asyncio.Event()
        load = asyncio.create_task(load_until(stop, addresses))
        publishing = asyncio.create_task(publisher.run(stop))
        recovery: dict[str, float] = {}
        try:
            # In turn, KILL_EVERY seconds apart: a process need not be back before the next
            # one dies, so several are down at once (and the run stays short).
            recovering = []
            for entry in stack.config.services:
                recovering.append(asyncio.create_task(kill_and_recover(stack, entry.name)))
                await asyncio.sleep(KILL_EVERY)
            for entry, seconds in zip(
                stack.config.services, await asyncio.gather(*recovering), strict=True
            ):
                recovery[entry.name] = seconds
            recovery["mongodb"] = await kill_and_recover(stack, "mongodb")
            closed, recovery["rabbitmq connections"] = await drop_rabbitmq_connections(stack)
            # The bridge consumes again: a second poison message reaches its dead letters.
            await asyncio.to_thread(send_amqp_poison, stack.vhost, f"poison-{word}-after-drop")
            # Traffic goes on for a while after the last fault, so that it crosses the recovery.
            await asyncio.sleep(PUBLISH_EVERY * 3)
        finally:
            stop.set()
            load_errors = await load
            await publishing

        print(f"\nrecovery seconds: {json.dumps({k: round(v, 1) for k, v in recovery.items()})}")
        print(f"load errors during faults: {dict(load_errors)}; {closed} AMQP connections closed")
        assert not publisher.failed, publisher.failed
        assert closed >= 3  # the ingress bridge, the delivery worker and the dispatcher at least

        # Every process is healthy again, and a fresh stretch of load has no error at all.
        for entry in stack.config.services:
            assert await asyncio.to_thread(process_healthy, stack.config, entry), entry.name
        calm = await tool.run(addresses, LOAD_RATE, 5.0)
        assert calm.errors == 0, calm.markdown()

        # No event lost: what the catalog says is published is what was published, all found.
        published = set(publisher.published)
        assert len(published) >= 10
        assert await published_by(catalog, provider) == published
        found = await eventually(
            lambda: _all_of(searchable(search, word), published),
            "search to find every published solution",
            within=120.0,
            interval=1.0,
        )
        assert found == published

        # Exactly one e-mail and one webhook call per published solution, no more.
        try:
            await eventually(
                lambda: (
                    set(webhook_items(stack.http, hook)) >= published
                    and set(emailed_items(stack.smtp, inbox, published)) >= published
                ),
                "a notification of every published solution on both channels",
                within=180.0,
                interval=1.0,
            )
        except AssertionError as exc:
            # Name what is missing on each channel, so that a failure says where to look.
            no_hook = sorted(published - set(webhook_items(stack.http, hook)))
            no_mail = sorted(published - set(emailed_items(stack.smtp, inbox, published)))
            raise AssertionError(
                f"{exc}: no webhook for {no_hook}; no e-mail for {no_mail}"
            ) from None
        webhooks = webhook_items(stack.http, hook)
        emails = emailed_items(stack.smtp, inbox, published)
        assert set(webhooks) == published
        assert all(count == 1 for count in webhooks.values()), webhooks
        assert all(count == 1 for count in emails.values()), emails
        assert len(stack.smtp.to(inbox)) == len(published)
        print(f"published {len(published)}: {len(emails)} e-mails, {len(webhooks)} webhook calls")

    # The dead letters hold the deliberate poison and nothing else: every consumer group of
    # the poisoned topic set it aside (a group whose worker died before committing may have
    # done so twice), and the ingress bridge refused its two messages.
    topics, letters = await kafka_dead_letters(stack.config.kafka_bootstrap)
    assert f"{POISON_TOPIC}.dlq" in topics
    assert letters and {(d.topic, d.key) for d in letters} == {(f"{POISON_TOPIC}.dlq", poison_key)}
    groups = Counter(d.headers["dlq-consumer-group"].decode() for d in letters)
    print(f"kafka dead letters: {len(letters)} (by consumer group: {dict(groups)})")
    queues = await eventually(
        lambda: _with_dead_letters(stack.vhost, 2), "both AMQP poison messages refused", 60.0, 1.0
    )
    dead_queues = {n: c for n, c in queues.items() if "dlq" in n or "dead-letter" in n}
    assert dead_queues.pop(INGRESS_DEAD_LETTERS) == 2, queues
    assert dead_queues and not any(dead_queues.values()), dead_queues


async def _all_of(ids: Awaitable[set[str]], wanted: set[str]) -> set[str] | None:
    """ids once they include all of wanted, else None."""
    got = await ids
    return got if got >= wanted else None


async def _with_dead_letters(vhost: Vhost, count: int) -> dict[str, int] | None:
    """The vhost's queue depths once the ingress dead-letter queue holds count, else None."""
    depths = await asyncio.to_thread(vhost.queue_depths)
    return depths if depths.get(INGRESS_DEAD_LETTERS) == count else None

"""The whole notifications service on real servers, for end-to-end tests: Kafka (events in),
MongoDB, RabbitMQ (the machine's, queues under a unique prefix), an SMTP server and an HTTP
receiver; the API and the worker in-process, the nameko delivery worker as a process of its
own, the outbox relay in-process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from ssg.contracts.notifications.v1 import delivery_pb2 as dpb
from ssg.contracts.notifications.v1 import notifications_service_pb2 as pb
from ssg.contracts.notifications.v1 import notifications_service_pb2_grpc as pb_grpc
from ssg.contracts.notifications.v1 import subscription_pb2 as spb
from ssg.notifications.bootstrap import POLICY, bootstrap
from ssg.notifications.events.publisher import TOPICS
from ssg.notifications.settings import NotificationsSettings
from ssg.notifications.worker import build_worker, run_worker
from ssg.platform.auth.tokens import Role
from ssg.platform.events.kafka import producer_options
from ssg.platform.events.topics import ensure_topics
from ssg.testing.receivers import HttpSink, SmtpSink
from ssg.testing.services import running_relay, serving
from ssg.testing.waiting import eventually

from .conftest import DeliveryProcess, delete_queues, delivery_env, make_settings, token_metadata


@dataclass
class Stack:
    """Everything running for the module."""

    settings: NotificationsSettings
    stub: pb_grpc.NotificationServiceStub
    producer: AIOKafkaProducer
    smtp: SmtpSink
    http: HttpSink
    delivery: DeliveryProcess
    worker: object

    async def publish(self, topic: str, env) -> None:
        """Send an envelope as the catalog would (keyed by aggregate id)."""
        await self.producer.send_and_wait(
            topic, env.SerializeToString(), key=env.aggregate_id.encode()
        )

    async def subscribe(self, subject: str, *, org: str = "", **fields) -> pb.SubscribeResponse:
        base: dict[str, Any] = dict(
            channel=spb.CHANNEL_EMAIL,
            topics=[spb.TOPIC_SOLUTIONS],
            frequency=spb.FREQUENCY_INSTANT,
            language="en",
        )
        base.update(fields)
        meta = token_metadata(subject, Role.MEMBER, org=org)
        return await self.stub.Subscribe(
            pb.SubscribeRequest(subscription=spb.Subscription(**base)), metadata=meta
        )

    async def deliveries(self, subject: str) -> list[dpb.Delivery]:
        reply = await self.stub.ListDeliveries(
            pb.ListDeliveriesRequest(), metadata=token_metadata(subject, Role.MEMBER)
        )
        return list(reply.deliveries)


@asynccontextmanager
async def running_stack(
    mongodb_server: Any,
    kafka_server: Any,
    amqp_url: str,
    log_dir: Path,
    http: HttpSink,
    topics: Sequence[str],
) -> AsyncIterator[Stack]:
    """Everything of Stack started on the session's servers, queues under a unique prefix;
    topics are created with 3 partitions first."""
    tag = uuid.uuid4().hex[:8]
    smtp = SmtpSink()
    smtp.start()
    settings = make_settings(
        mongodb_server.uri(f"notifications-e2e-{tag}"),
        kafka_bootstrap=kafka_server.bootstrap,
        kafka_local_profile=kafka_server.local,
        amqp_url=amqp_url,
        queue_prefix=f"test.notifications.{tag}",
        matcher_group=f"notifications-matcher-{tag}",
        smtp_port=smtp.port,
        event_retry_base_seconds=0.1,
    )
    await ensure_topics(kafka_server.bootstrap, [*topics, *TOPICS], partitions=3)
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    app = bootstrap(settings)
    worker = build_worker(settings)
    stop = asyncio.Event()
    log = str(log_dir / "delivery.log")
    delivery = DeliveryProcess(delivery_env(settings, log))
    delivery.start()
    try:
        async with (
            serving(app, POLICY, app.store.ensure_indexes) as running,
            running_relay("notifications", settings.mongodb_uri, kafka_server, TOPICS),
        ):
            runner = asyncio.create_task(run_worker(worker, stop))
            await eventually(lambda: worker.consumer.assignment(), "the matcher to join", within=60)
            yield Stack(
                settings,
                pb_grpc.NotificationServiceStub(running.channel),
                producer,
                smtp,
                http,
                delivery,
                worker,
            )
            stop.set()
            await asyncio.wait_for(runner, 30)
    finally:
        delivery.stop()
        await producer.stop()
        worker.close()
        smtp.stop()
        http.stop()
        delete_queues(amqp_url, settings)


def sent_to(stack: Stack, address: str) -> int:
    """How many e-mails address received."""
    return len(stack.smtp.to(address))


async def sent_rows(stack: Stack, subject: str) -> list[dpb.Delivery]:
    """The deliveries of subject once all of them are sent (empty before)."""
    rows = await stack.deliveries(subject)
    return rows if rows and all(d.status == dpb.DELIVERY_STATUS_SENT for d in rows) else []

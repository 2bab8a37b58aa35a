"""The delivery senders against real local servers: a webhook to a loopback or private
address is refused before any request; redirects are not followed; e-mail goes through a real
SMTP server; the delivery process imports neither grpcio nor a MongoDB driver, and stops
cleanly on SIGTERM."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kombu import Connection

from ssg.notifications.delivery.senders import (
    SendFailed,
    SmtpConfig,
    WebhookClient,
    send_email,
    send_webhook,
)
from ssg.notifications.domain.signing import verify_webhook_signature
from ssg.notifications.domain.targets import TargetRefused
from ssg.notifications.domain.tasks import DeliveryTask
from ssg.notifications.worker import topology
from ssg.testing import servers
from ssg.testing.receivers import HttpSink, Received, SmtpSink

from .conftest import DeliveryProcess, delete_queues, delivery_env, make_settings


def task(address: str, channel: int = 2) -> DeliveryTask:
    return DeliveryTask(
        delivery_id="d" * 32,
        subscription_id="s1",
        channel=channel,
        address=address,
        subject="Hello",
        text="plain",
        html="<p>html</p>",
        body=json.dumps({"k": "v"}),
        event_type="catalog.SolutionPublished",
        event_time=0.0,
        unsubscribe_url="https://ssg.example.org/unsubscribe?token=t",
    )


@pytest.fixture
def sink():
    s = HttpSink()
    yield s
    s.stop()


def test_webhook_to_loopback_is_refused_without_a_request(sink):
    with pytest.raises(SendFailed) as caught:
        send_webhook(task(sink.url("/private")), "secret", timeout=2)
    assert not caught.value.retryable and "loopback" in str(caught.value)
    assert sink.requests == []


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/x", "http://169.254.169.254/latest/meta-data", "http://[::1]:9/"]
)
def test_webhook_to_private_metadata_and_ipv6_loopback_is_refused(url):
    with pytest.raises(SendFailed) as caught:
        send_webhook(task(url), "secret", timeout=2, allow_loopback=False)
    assert not caught.value.retryable


def test_webhook_redirect_is_not_followed():
    hits: list[str] = []

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.path)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(SendFailed) as caught:
            send_webhook(
                task(f"http://127.0.0.1:{server.server_address[1]}/r"),
                "secret",
                timeout=2,
                allow_loopback=True,
            )
    finally:
        server.shutdown()
        server.server_close()
    assert caught.value.code == 302 and "redirect not followed" in str(caught.value)
    assert hits == ["/r"]


def test_webhook_server_error_is_retryable_client_error_is_not(sink):
    sink.always_fail.add("/err")
    with pytest.raises(SendFailed) as caught:
        send_webhook(task(sink.url("/err")), "secret", timeout=2, allow_loopback=True)
    assert caught.value.retryable and caught.value.code == 500
    ok = send_webhook(task(sink.url("/ok")), "secret", timeout=2, allow_loopback=True)
    assert ok.code == 204
    headers = {k.lower(): v for k, v in sink.at("/ok")[0].headers.items()}
    assert headers["x-ssg-delivery-id"] == "d" * 32 and headers["x-ssg-signature"].startswith("v1=")


def post_three(sink: HttpSink, path: str) -> list[Received]:
    """Three webhooks through one client; what the receiver got."""
    client = WebhookClient(timeout=2, allow_loopback=True)
    try:
        for _ in range(3):
            assert client.post(task(sink.url(path)), "secret").code == 204
    finally:
        client.close()
    return sink.at(path)


def test_webhook_client_keeps_the_connection_and_signs_each_request():
    sink = HttpSink(keep_alive=True)
    try:
        received = post_three(sink, "/ka")
    finally:
        sink.stop()
    assert len(received) == 3 and len({r.peer_port for r in received}) == 1
    for r in received:
        headers = {k.lower(): v for k, v in r.headers.items()}
        stamp = int(headers["x-ssg-timestamp"])
        assert verify_webhook_signature(
            "secret", stamp, r.body, headers["x-ssg-signature"], now=stamp
        )


def test_webhook_client_opens_a_connection_per_request_to_an_http10_receiver(sink):
    assert len({r.peer_port for r in post_three(sink, "/one")}) == 3


def test_webhook_client_sends_again_once_when_the_receiver_closed_the_kept_connection():
    # The receiver closes each connection after answering, without saying so: every kept
    # connection fails, and each webhook goes once more on a new one.
    sink = HttpSink(keep_alive=True, drop_after_response=True)
    try:
        received = post_three(sink, "/drop")
    finally:
        sink.stop()
    assert len(received) == 3 and len({r.peer_port for r in received}) == 3


def test_webhook_client_does_not_reuse_a_connection_idle_longer_than_idle_seconds():
    now = [0.0]
    sink = HttpSink(keep_alive=True)
    client = WebhookClient(timeout=2, allow_loopback=True, idle_seconds=4, clock=lambda: now[0])
    try:
        for at in (0.0, 1.0, 6.0):
            now[0] = at
            assert client.post(task(sink.url("/idle")), "secret").code == 204
    finally:
        client.close()
        sink.stop()
    ports = [r.peer_port for r in sink.at("/idle")]
    assert ports[0] == ports[1] != ports[2]


def test_webhook_client_checks_a_host_again_after_the_ttl():
    now = [0.0]
    client = WebhookClient(timeout=2, allow_loopback=True, resolve_ttl=30, clock=lambda: now[0])
    assert client.address("localhost", 80) in ("127.0.0.1", "::1")
    # The setting changes under it: the checked address holds for the TTL, then is refused.
    client.allow_loopback = False
    now[0] = 29.0
    assert client.address("localhost", 80) in ("127.0.0.1", "::1")
    now[0] = 31.0
    with pytest.raises(TargetRefused, match="loopback"):
        client.address("localhost", 80)
    with pytest.raises(SendFailed) as caught:
        client.post(task("http://169.254.169.254/latest/meta-data"), "secret")
    assert not caught.value.retryable


def test_email_reaches_a_real_smtp_server():
    smtp = SmtpSink()
    smtp.start()
    try:
        config = SmtpConfig("127.0.0.1", smtp.port, "SSG <n@ssg.example.org>", timeout=5)
        sent = send_email(task("zoe@example.org", channel=1), config)
        assert sent.code == 250
        (mail,) = smtp.to("zoe@example.org")
        assert mail["Message-ID"] == f"<{'d' * 32}@notifications.ssg>"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    finally:
        smtp.stop()
    with pytest.raises(SendFailed) as down:
        send_email(task("zoe@example.org", channel=1), config)
    assert down.value.retryable


def test_delivery_process_imports_no_grpc_and_no_mongodb_driver():
    code = (
        "import eventlet; eventlet.monkey_patch()\n"
        "import sys, ssg.notifications.delivery.service, ssg.notifications.settings\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'pymongo', 'bson', 'mongoengine'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_delivery_process_stops_on_sigterm(amqp_url, tmp_path, mongodb_server):
    settings = make_settings(
        mongodb_server.uri("unused"),
        amqp_url=amqp_url,
        queue_prefix=f"test.sigterm.{uuid.uuid4().hex[:8]}",
    )
    proc = DeliveryProcess(delivery_env(settings, str(tmp_path / "delivery.log")))
    proc.start()
    try:
        with Connection(amqp_url) as conn:
            tasks = topology(settings).tasks

            def consuming() -> bool:
                try:
                    return (
                        conn.default_channel.queue_declare(queue=tasks, passive=True).consumer_count
                        > 0
                    )
                except Exception:
                    conn.close()
                    return False

            servers.wait_until(consuming, 30, "the delivery worker to consume")
        assert proc.proc is not None
        started = time.monotonic()
        proc.proc.terminate()
        assert proc.proc.wait(20) == 0
        assert time.monotonic() - started < 10
    finally:
        proc.stop()
        delete_queues(amqp_url, settings)

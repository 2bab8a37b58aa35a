"""Real local receivers for notification tests: an SMTP server (aiosmtpd) and an HTTP server
whose paths behave as asked (accept, fail n times then accept, always fail, stall)."""

from __future__ import annotations

import asyncio
import email.policy
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage, Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from aiosmtpd.controller import Controller

from ssg.testing.servers import free_port


@dataclass
class Received:
    """One webhook request as received."""

    path: str
    headers: dict[str, str]
    body: bytes
    # The client's port: requests on one kept-alive connection share it.
    peer_port: int = 0


class SmtpSink:
    """Collects every message; delays its greeting while ``stall`` is set (a worker killed
    then is mid-task, and nothing has been sent)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        # While set, RCPT TO for stall_address is not answered; reached is set once a client
        # waits there (it is then mid-transaction: nothing is delivered if it dies).
        self.stall = threading.Event()
        self.stall_address = ""
        self.reached = threading.Event()
        self.port = free_port()
        sink = self

        class Handler:
            async def handle_RCPT(
                self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
            ) -> str:
                while sink.stall.is_set() and address == sink.stall_address:
                    sink.reached.set()
                    await asyncio.sleep(0.05)
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.messages.append(
                    message_from_bytes(envelope.content, policy=email.policy.default)
                )
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        """Serve on 127.0.0.1:port."""
        self.controller.start()

    def stop(self) -> None:
        """Stop serving."""
        self.controller.stop()

    def to(self, address: str) -> list[Message]:
        """Messages received for address."""
        return [m for m in self.messages if m["To"] == address]


def plain_text(message: Message) -> str:
    """The text/plain part of a received message, decoded ('' when it has none)."""
    body = cast(EmailMessage, message).get_body(preferencelist=("plain",))
    return str(body.get_content()) if body is not None else ""


@dataclass
class HttpSink:
    """Records webhook requests; a path's plan decides each answer. HTTP/1.0 (a connection per
    request) unless keep_alive; with keep_alive, drop_after_response closes each connection
    after answering without announcing it (as a server's idle timeout would)."""

    fail_first: dict[str, int] = field(default_factory=dict)
    always_fail: set[str] = field(default_factory=set)
    requests: list[Received] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    keep_alive: bool = False
    drop_after_response: bool = False

    def __post_init__(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if sink.keep_alive else "HTTP/1.0"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                sink.requests.append(
                    Received(self.path, dict(self.headers.items()), body, self.client_address[1])
                )
                sink.seen[self.path] += 1
                failing = self.path in sink.always_fail or sink.seen[
                    self.path
                ] <= sink.fail_first.get(self.path, 0)
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if sink.drop_after_response:
                    self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """The URL of path on this receiver."""
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        """Requests received on path."""
        return [r for r in self.requests if r.path == path]

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

"""The delivery process's HTTP/1.1 exchange against a scripted receiver on loopback: what it
keeps a connection for (a known, fully read body on HTTP/1.1) and what it closes it after
(chunked, close-delimited, HTTP/1.0, Connection: close); interim answers are skipped; a
malformed answer or a header that could split the request is an error."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from ssg.notifications.delivery import http1

REQUEST = http1.request_bytes("example.org", "/hook", {"X-Test": "1"}, b'{"k": "v"}')


class Scripted:
    """Answers each request it reads with the next scripted answer; counts connections."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                buf = b""
                while self.answers:
                    while REQUEST not in buf:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                    if REQUEST not in buf:
                        break
                    buf = buf[len(REQUEST) :]
                    self.requests.append(REQUEST)
                    conn.sendall(self.answers.pop(0))

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Scripted]:
    server = Scripted(request.param)
    yield server
    server.close()


def connect(server: Scripted) -> http1.Connection:
    return http1.Connection("127.0.0.1", server.port, timeout=2)


OK_BODY = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"


@pytest.mark.parametrize("receiver", [[OK_BODY, b"HTTP/1.1 204 No Content\r\n\r\n"]], indirect=True)
def test_a_known_body_is_read_and_the_connection_carries_the_next_request(receiver):
    conn = connect(receiver)
    assert conn.exchange(REQUEST) == (200, True)
    assert conn.exchange(REQUEST) == (204, True)
    conn.close()
    assert receiver.connections == 1 and len(receiver.requests) == 2


@pytest.mark.parametrize(
    "receiver",
    [
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"],
        [b"HTTP/1.1 500 Oops\r\nContent-Type: text/plain\r\n\r\nbody until close"],
        [b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"],
        [
            b"HTTP/1.1 302 Found\r\nConnection: close\r\nLocation: http://x/\r\nContent-Length: 0\r\n\r\n"
        ],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000],
    ],
    indirect=True,
)
def test_a_connection_that_cannot_carry_another_request_is_closed(receiver):
    conn = connect(receiver)
    status, reusable = conn.exchange(REQUEST)
    assert status in (200, 302, 500) and not reusable and conn.sock is None


@pytest.mark.parametrize(
    "receiver",
    [[b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"]],
    indirect=True,
)
def test_an_interim_answer_is_skipped(receiver):
    conn = connect(receiver)
    assert conn.exchange(REQUEST) == (201, True)
    conn.close()


@pytest.mark.parametrize(
    "receiver", [[b"SMTP ready\r\n\r\n"], [b"HTTP/1.1 2x0 OK\r\n\r\n"]], indirect=True
)
def test_a_malformed_answer_is_a_protocol_error(receiver):
    conn = connect(receiver)
    with pytest.raises(http1.ProtocolError):
        conn.exchange(REQUEST)
    assert conn.sock is None


@pytest.mark.parametrize("receiver", [[b""]], indirect=True)
def test_a_receiver_closing_without_an_answer_is_a_connection_error(receiver):
    conn = connect(receiver)
    with pytest.raises(ConnectionError):
        conn.exchange(REQUEST)


@pytest.mark.parametrize(
    "headers", [{"X-Id": "a\r\nX-Evil: 1"}, {"X-Id": "a\nb"}, {"X-Id": "caf\u00e9"}]
)
def test_a_header_that_could_split_the_request_or_is_not_ascii_is_refused(headers):
    with pytest.raises(ValueError):
        http1.request_bytes("example.org", "/hook", headers, b"{}")


def test_the_request_is_one_post_with_its_length():
    head, _, body = REQUEST.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"POST /hook HTTP/1.1",
        b"Host: example.org",
        b"X-Test: 1",
        b"Content-Length: 10",
    ]
    assert body == b'{"k": "v"}'

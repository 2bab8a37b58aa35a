"""The few parts of HTTP/1.1 a webhook POST needs, on a socket the caller connected to an
address it checked: one request written with one ``sendall``, the status line and headers of
the answer read, its body skipped when its length is known (the connection can then carry the
next request), otherwise the connection closed.

http.client does the same with about 150 us of Python per request (header validation, a file
object per response, the e-mail header parser), several times what the exchange costs on
loopback; the delivery process sends thousands a second. Standard library only, so it runs
green under eventlet.
"""

from __future__ import annotations

import socket
import ssl

# A receiver's head (status line and headers) larger than this is not an answer we can use.
HEAD_MAX = 64 * 1024
# A body up to this size is read and dropped to keep the connection; a larger one closes it.
BODY_MAX = 64 * 1024


class ProtocolError(Exception):
    """The receiver's answer is not HTTP/1.x."""


class Closed(ConnectionError):
    """The receiver closed the connection before answering (on a kept connection: its idle
    timeout, the request was not read)."""


def request_bytes(host_header: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """A POST request; ValueError when a value could split the head (CR or LF) or is not
    ASCII."""
    parts = "".join([path, host_header, *headers, *headers.values()])
    if "\r" in parts or "\n" in parts:
        raise ValueError("a request header contains CR or LF")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host_header}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode("ascii") + b"\r\n\r\n" + body


class Connection:
    """One connection to one receiver, used by one request at a time."""

    def __init__(
        self,
        address: str,
        port: int,
        timeout: float,
        tls: ssl.SSLContext | None = None,
        server_hostname: str = "",
    ) -> None:
        sock = socket.create_connection((address, port), timeout)
        if tls is not None:
            try:
                sock = tls.wrap_socket(sock, server_hostname=server_hostname)
            except BaseException:
                sock.close()
                raise
        self.sock: socket.socket | None = sock
        self._rest = b""

    def exchange(self, request: bytes) -> tuple[int, bool]:
        """Send one request and read the answer: (status, whether the connection can carry
        another request). Closes the connection when it cannot, or on any error."""
        if self.sock is None:
            raise Closed("connection already closed")
        try:
            self.sock.sendall(request)
            while True:
                status, version, fields = self._head()
                if 100 <= status < 200 and status != 101:
                    continue  # an interim answer (100 Continue, 103 Early Hints): the next
                break
            reusable = self._skip_body(status, version, fields)
        except BaseException:
            self.close()
            raise
        if not reusable:
            self.close()
        return status, reusable

    def close(self) -> None:
        """Close the socket (idempotent)."""
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()

    def _recv(self) -> bytes:
        assert self.sock is not None
        return self.sock.recv(65536)

    def _head(self) -> tuple[int, str, dict[str, str]]:
        buf = self._rest
        while (end := buf.find(b"\r\n\r\n")) < 0:
            if len(buf) > HEAD_MAX:
                raise ProtocolError("answer head too large")
            chunk = self._recv()
            if not chunk:
                if buf:
                    raise ProtocolError("connection closed in the middle of the answer")
                raise Closed("closed by the receiver before answering")
            buf += chunk
        head, self._rest = buf[:end], buf[end + 4 :]
        try:
            text = head.decode("latin-1")
            status_line, *lines = text.split("\r\n")
            version, code = status_line.split(" ", 2)[:2]
            status = int(code)
        except ValueError:
            raise ProtocolError("malformed status line") from None
        if not version.startswith("HTTP/1.") or not 100 <= status <= 999:
            raise ProtocolError(f"not an HTTP/1.x answer: {status_line[:40]!r}")
        fields: dict[str, str] = {}
        for line in lines:
            name, sep, value = line.partition(":")
            if sep:
                fields[name.strip().lower()] = value.strip()
        return status, version, fields

    def _skip_body(self, status: int, version: str, fields: dict[str, str]) -> bool:
        """Read and drop the body when its length is known and small; True when the
        connection stays usable."""
        keep = version == "HTTP/1.1" and "close" not in fields.get("connection", "").lower()
        if status in (204, 304):
            return keep and not self._rest
        if "transfer-encoding" in fields:
            return False  # chunked: the status is all we need, the connection goes
        try:
            length = int(fields["content-length"])
        except (KeyError, ValueError):
            return False  # delimited by the close
        if length < 0 or length > BODY_MAX:
            return False
        got = len(self._rest)
        while got < length:
            chunk = self._recv()
            if not chunk:
                return False
            got += len(chunk)
        # More than the body arrived: not an answer to one request, do not reuse.
        if not keep or got != length:
            return False
        self._rest = b""
        return True

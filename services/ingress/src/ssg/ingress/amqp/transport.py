"""A py-amqp transport that reads the socket in chunks rather than frame part by frame part.

py-amqp reads exactly the bytes it needs: the 7-byte frame header, the payload, the end
octet. A delivery is three frames, so nine ``recv`` calls per message, each a trip through
eventlet's green socket. Reading up to ``_CHUNK`` bytes at a time keeps what follows in the
transport's own read buffer (py-amqp already keeps one, and reads from it first), so a burst
of deliveries is read with a few calls. Frames are parsed exactly as before.
"""

from __future__ import annotations

import errno
from typing import Any

from amqp.transport import TCPTransport
from kombu.transport import pyamqp

_CHUNK = 64 * 1024


class ChunkedTCPTransport(TCPTransport):
    """py-amqp's plain TCP transport, reading ahead into its buffer."""

    def _read(
        self, n: int, initial: bool = False, _errnos: tuple[int, ...] = (errno.EAGAIN, errno.EINTR)
    ) -> bytes:
        """Exactly n bytes, from the buffer first; the socket is read a chunk at a time."""
        recv = self._quick_recv
        rbuf: bytes = self._read_buffer  # type: ignore[has-type]
        try:
            while len(rbuf) < n:
                try:
                    s = recv(max(n - len(rbuf), _CHUNK))
                except OSError as exc:
                    if exc.errno in _errnos:
                        if initial and self.raise_on_initial_eintr:
                            raise TimeoutError() from exc
                        continue
                    raise
                if not s:
                    raise OSError("Server unexpectedly closed connection")
                rbuf += s
        except BaseException:
            self._read_buffer = rbuf
            raise
        result, self._read_buffer = rbuf[:n], rbuf[n:]
        return bytes(result)


class ChunkedConnection(pyamqp.Connection):
    """kombu's py-amqp connection whose plain TCP transport reads ahead (TLS left as it is)."""

    def Transport(
        self,
        host: str,
        connect_timeout: float | None,
        ssl: Any = False,
        read_timeout: float | None = None,
        write_timeout: float | None = None,
        socket_settings: Any = None,
        **kwargs: Any,
    ) -> Any:
        """The chunked transport for plain TCP, py-amqp's own otherwise."""
        if ssl:
            return super().Transport(
                host, connect_timeout, ssl, read_timeout, write_timeout, socket_settings, **kwargs
            )
        return ChunkedTCPTransport(
            host,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            socket_settings=socket_settings,
            **kwargs,
        )


class ChunkedKombuTransport(pyamqp.Transport):
    """kombu's py-amqp transport over ``ChunkedConnection``."""

    Connection = ChunkedConnection

"""Sending one delivery: e-mail over SMTP, or a signed webhook POST. Standard library only, so
the same code runs green under eventlet's monkey patching.

A sender returns a ``Sent`` or raises ``SendFailed`` saying whether a retry could help
(a timeout, a 5xx, an SMTP 4xx) or not (a refused target, a 4xx, an SMTP 5xx).
"""

from __future__ import annotations

import email.policy
import ipaddress
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from ssg.notifications.delivery import http1
from ssg.notifications.domain.signing import webhook_signature
from ssg.notifications.domain.targets import TargetRefused, address_refusal, parse_url
from ssg.notifications.domain.tasks import DeliveryTask

USER_AGENT = "SouthSouthGalaxy-Webhooks/1"
# Long headers (the unsubscribe URL) stay as written: folding at 78 would turn the URL into
# RFC 2047 encoded words, which mail clients do not take as a List-Unsubscribe link.
_POLICY = email.policy.SMTP.clone(max_line_length=998)
# Status codes worth another try: timeouts, throttling, server errors.
RETRYABLE_HTTP = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Sent:
    """The receiver accepted the message with this code."""

    code: int


class SendFailed(Exception):
    """An attempt failed; retryable says whether another attempt could succeed."""

    def __init__(self, error: str, *, code: int = 0, retryable: bool = True) -> None:
        super().__init__(error)
        self.code = code
        self.retryable = retryable


@dataclass(frozen=True)
class SmtpConfig:
    """Where and as whom e-mail is sent."""

    host: str
    port: int
    sender: str
    timeout: float
    starttls: bool = False
    username: str = ""
    password: str = ""


def email_message(task: DeliveryTask, sender: str) -> EmailMessage:
    """The e-mail of a task: plain text with an HTML alternative, one-click unsubscribe headers,
    and a Message-ID derived from the delivery id (receivers can drop a repeat)."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = sender
    msg["To"] = task.address
    msg["Subject"] = task.subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<{task.delivery_id}@notifications.ssg>"
    msg["X-SSG-Delivery-Id"] = task.delivery_id
    if task.unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{task.unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(task.text)
    if task.html:
        msg.add_alternative(task.html, subtype="html")
    return msg


def send_email(task: DeliveryTask, config: SmtpConfig) -> Sent:
    """Hand the message to the SMTP server."""
    try:
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.username:
                smtp.login(config.username, config.password)
            refused = smtp.send_message(email_message(task, config.sender))
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        raise SendFailed(
            f"recipient refused: {code} {reply!r}", code=code, retryable=code < 500
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise SendFailed(
            f"SMTP {exc.smtp_code}: {exc.smtp_error!r}",
            code=exc.smtp_code,
            retryable=exc.smtp_code < 500,
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise SendFailed(f"SMTP connection failed: {type(exc).__name__}: {exc}") from None
    if refused:
        raise SendFailed(f"recipient refused: {refused}", retryable=False)
    return Sent(250)


def resolve_public(host: str, port: int, allow_loopback: bool) -> str:
    """An address of host that may receive webhooks; TargetRefused when none may."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        # An address needs no lookup (and eventlet's green resolver would add one).
        if reason := address_refusal(str(literal), allow_loopback=allow_loopback):
            raise TargetRefused(f"{host} {reason}")
        return str(literal)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise SendFailed(f"cannot resolve {host}: {exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    # Every address must pass: a name resolving to one public and one private address could
    # otherwise be steered to the private one on the next lookup.
    for address in addresses:
        if reason := address_refusal(address, allow_loopback=allow_loopback):
            raise TargetRefused(f"{host} resolves to {address}, which {reason}")
    return addresses[0]


_TLS: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    # One context for every connection: creating one loads the CA store (milliseconds).
    global _TLS
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return _TLS


# (scheme, host, port, checked address): connections to one key are interchangeable.
_Key = tuple[str, str, int, str]


class WebhookClient:
    """Sends webhooks, keeping what can be reused between requests: the checked address of
    each host for ``resolve_ttl`` seconds (connections still go to the checked address, never to
    a fresh lookup's) and idle keep-alive connections for ``idle_seconds``.

    Safe to share between green threads (or threads): a connection is used by one request at a
    time, taken out of the idle lists while in use.
    """

    def __init__(
        self,
        *,
        timeout: float,
        allow_loopback: bool = False,
        resolve_ttl: float = 30.0,
        idle_seconds: float = 4.0,
        max_idle: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.allow_loopback = allow_loopback
        self.resolve_ttl = resolve_ttl
        # Below the 5 s idle timeout of common servers, so a kept connection is rarely stale.
        self.idle_seconds = idle_seconds
        self.max_idle = max_idle
        self.clock = clock
        self._addresses: dict[tuple[str, int], tuple[float, str]] = {}
        self._idle: dict[_Key, list[tuple[float, http1.Connection]]] = {}
        self._idle_count = 0
        self._next_prune = 0.0

    def address(self, host: str, port: int) -> str:
        """The checked address of host (looked up again after resolve_ttl seconds)."""
        now = self.clock()
        cached = self._addresses.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        address = resolve_public(host, port, self.allow_loopback)
        if len(self._addresses) > 10_000:
            self._addresses.clear()
        self._addresses[(host, port)] = (now + self.resolve_ttl, address)
        return address

    def post(self, task: DeliveryTask, secret: str) -> Sent:
        """POST the task's JSON body, signed, to the subscription's URL; redirects are not
        followed."""
        try:
            target = parse_url(task.address)
            address = self.address(target.host, target.port)
        except TargetRefused as exc:
            raise SendFailed(f"webhook target refused: {exc}", retryable=False) from None
        body = task.body.encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-SSG-Delivery-Id": task.delivery_id,
            "X-SSG-Event-Type": task.event_type,
            "X-SSG-Attempt": str(task.attempt),
            "X-SSG-Timestamp": str(timestamp),
            "X-SSG-Signature": webhook_signature(secret, timestamp, body),
        }
        try:
            # An international name goes into the Host header as its IDNA (ASCII) form.
            name = target.host if target.host.isascii() else target.host.encode("idna").decode()
            host = name if target.port in (80, 443) else f"{name}:{target.port}"
            request = http1.request_bytes(host, target.path, headers, body)
        except ValueError as exc:
            raise SendFailed(f"webhook request not sendable: {exc}", retryable=False) from None
        key = (target.scheme, target.host, target.port, address)
        conn = self._take(key)
        try:
            if conn is not None:
                try:
                    status = self._exchange(conn, key, request)
                except ConnectionError:
                    # The receiver closed the kept connection before reading this request
                    # (its idle timeout): once more on a new connection.
                    conn = None
            if conn is None:
                conn = self._connect(key)
                status = self._exchange(conn, key, request)
        except (OSError, http1.ProtocolError) as exc:
            raise SendFailed(f"webhook request failed: {type(exc).__name__}: {exc}") from None
        if 200 <= status < 300:
            return Sent(status)
        retryable = status >= 500 or status in RETRYABLE_HTTP
        what = "redirect not followed" if 300 <= status < 400 else "webhook answered"
        raise SendFailed(f"{what}: HTTP {status}", code=status, retryable=retryable)

    def close(self) -> None:
        """Close every idle connection."""
        idle, self._idle, self._idle_count = self._idle, {}, 0
        for conns in idle.values():
            for _, conn in conns:
                conn.close()

    def _connect(self, key: _Key) -> http1.Connection:
        scheme, host, port, address = key
        # Connect to the checked address, not to whatever the name resolves to next; TLS
        # still checks the certificate against the host name.
        if scheme == "https":
            return http1.Connection(address, port, self.timeout, _tls_context(), host)
        return http1.Connection(address, port, self.timeout)

    def _exchange(self, conn: http1.Connection, key: _Key, request: bytes) -> int:
        """One request and its answer; the connection is kept when it can carry another."""
        status, reusable = conn.exchange(request)
        if reusable:
            self._give(key, conn)
        return status

    def _take(self, key: _Key) -> http1.Connection | None:
        conns = self._idle.get(key)
        now = self.clock()
        while conns:
            since, conn = conns.pop()
            self._idle_count -= 1
            if now - since < self.idle_seconds:
                return conn
            conn.close()
        return None

    def _give(self, key: _Key, conn: http1.Connection) -> None:
        # Now and then, and when full: close what receivers have most likely closed already.
        if self._idle_count >= self.max_idle or self.clock() >= self._next_prune:
            self._prune()
            if self._idle_count >= self.max_idle:
                conn.close()
                return
        self._idle.setdefault(key, []).append((self.clock(), conn))
        self._idle_count += 1

    def _prune(self) -> None:
        """Close the connections idle for too long."""
        now = self.clock()
        self._next_prune = now + self.idle_seconds
        for key in list(self._idle):
            keep = []
            for since, conn in self._idle.pop(key, []):
                if now - since < self.idle_seconds:
                    keep.append((since, conn))
                else:
                    conn.close()
                    self._idle_count -= 1
            if keep:
                self._idle[key] = keep


def send_webhook(
    task: DeliveryTask, secret: str, *, timeout: float, allow_loopback: bool = False
) -> Sent:
    """POST the task's JSON body, signed, to the subscription's URL on a connection of its own;
    redirects are not followed."""
    client = WebhookClient(timeout=timeout, allow_loopback=allow_loopback)
    try:
        return client.post(task, secret)
    finally:
        client.close()

"""Sending one delivery: e-mail over SMTP, or a signed webhook POST. Standard library only, so
the same code runs green under eventlet's monkey patching.

A sender returns a ``Sent`` or raises ``SendFailed`` saying whether a retry could help
(a timeout, a 5xx, an SMTP 4xx) or not (a refused target, a 4xx, an SMTP 5xx).
"""

from __future__ import annotations

import email.policy
import http.client
import ipaddress
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

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


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an already checked address, with SNI and certificate checks for the host name."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def send_webhook(
    task: DeliveryTask, secret: str, *, timeout: float, allow_loopback: bool = False
) -> Sent:
    """POST the task's JSON body, signed, to the subscription's URL; redirects are not followed."""
    try:
        target = parse_url(task.address)
        address = resolve_public(target.host, target.port, allow_loopback)
    except TargetRefused as exc:
        raise SendFailed(f"webhook target refused: {exc}", retryable=False) from None
    body = task.body.encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Host": target.host if target.port in (80, 443) else f"{target.host}:{target.port}",
        "X-SSG-Delivery-Id": task.delivery_id,
        "X-SSG-Event-Type": task.event_type,
        "X-SSG-Attempt": str(task.attempt),
        "X-SSG-Timestamp": str(timestamp),
        "X-SSG-Signature": webhook_signature(secret, timestamp, body),
    }
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = _PinnedHTTPS(target.host, address, target.port, timeout)
    else:
        # Connect to the checked address, not to whatever the name resolves to next.
        conn = http.client.HTTPConnection(address, target.port, timeout=timeout)
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(64 * 1024)
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        raise SendFailed(f"webhook request failed: {type(exc).__name__}: {exc}") from None
    finally:
        conn.close()
    if 200 <= status < 300:
        return Sent(status)
    retryable = status >= 500 or status in RETRYABLE_HTTP
    what = "redirect not followed" if 300 <= status < 400 else "webhook answered"
    raise SendFailed(f"{what}: HTTP {status}", code=status, retryable=retryable)

"""Where a webhook may go: public http(s) addresses only.

A URL is refused when its host is, or resolves to, a loopback, private, link-local (which
includes the cloud metadata address 169.254.169.254), multicast, reserved or unspecified
address, unless loopback is explicitly allowed (tests, the local stack). The check runs at
Subscribe (literal addresses, syntax) and again on the addresses actually connected to.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

URL_MAX = 2048


class TargetRefused(ValueError):
    """The webhook target is not allowed; the message says why."""


@dataclass(frozen=True)
class Target:
    """A parsed webhook URL."""

    scheme: str
    host: str
    port: int
    path: str


def parse_url(url: str) -> Target:
    """Parse a webhook URL; TargetRefused when it is not an absolute http(s) URL."""
    if len(url) > URL_MAX:
        raise TargetRefused(f"must be at most {URL_MAX} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("must be an absolute http or https URL")
    if parts.username or parts.password:
        raise TargetRefused("must not carry credentials")
    if len(url.split()) != 1:
        raise TargetRefused("must not contain whitespace")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, parts.hostname, port or default, path)


def address_refusal(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why an IP address may not receive webhooks, or None when it may."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if allow_loopback else "is a loopback address"
    if ip.is_link_local:
        return "is a link-local address"
    if ip.is_private:
        return "is a private address"
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return "is not a public address"
    return None


def literal_host_refusal(host: str, *, allow_loopback: bool = False) -> str | None:
    """Why a host written as an IP address (or 'localhost') is refused; None otherwise."""
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        return None if allow_loopback else "is a loopback address"
    try:
        return address_refusal(host, allow_loopback=allow_loopback)
    except ValueError:
        return None  # a name: checked again on the addresses it resolves to

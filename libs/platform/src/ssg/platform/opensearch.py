"""The one way a process connects to OpenSearch: URL, credentials and CA bundle from settings.

A production cluster answers over TLS with basic authentication (SSG_OPENSEARCH_URL
``https://...``, SSG_OPENSEARCH_USERNAME / SSG_OPENSEARCH_PASSWORD, SSG_OPENSEARCH_CA_FILE);
a local stand-in answers plain HTTP without them. Every client (API, indexer, health check,
CLI) is built here so all of them trust and authenticate the same way.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from opensearchpy import AsyncOpenSearch

from ssg.platform.settings import ConfigError, PlatformSettings


def opensearch_options(settings: PlatformSettings) -> dict[str, Any]:
    """Connection keyword arguments of the OpenSearch clients (auth, TLS trust)."""
    url = settings.opensearch_url
    if not url:
        raise ConfigError("invalid configuration: SSG_OPENSEARCH_URL is required")
    options: dict[str, Any] = {"hosts": [url]}
    password = settings.opensearch_password.get_secret_value()
    if settings.opensearch_username:
        options["http_auth"] = (settings.opensearch_username, password)
    elif password:
        raise ConfigError(
            "invalid configuration: SSG_OPENSEARCH_PASSWORD is set without SSG_OPENSEARCH_USERNAME"
        )
    if url.lower().startswith("https://"):
        options["use_ssl"] = True
        options["ssl_context"] = tls_context(settings.opensearch_ca_file)
    elif settings.opensearch_ca_file:
        raise ConfigError(
            "invalid configuration: SSG_OPENSEARCH_CA_FILE needs an https:// SSG_OPENSEARCH_URL"
        )
    return options


def tls_context(ca_file: str) -> ssl.SSLContext:
    """Verify the server's certificate and host name against ca_file (system CAs if empty)."""
    if ca_file and not Path(ca_file).is_file():
        raise ConfigError(f"invalid configuration: SSG_OPENSEARCH_CA_FILE: no file at {ca_file}")
    # create_default_context trusts only cafile when one is given: a cluster's own CA must not
    # widen trust to every public CA.
    return ssl.create_default_context(cafile=ca_file or None)


def opensearch_client(
    settings: PlatformSettings, *, timeout_seconds: float = 10.0, max_retries: int = 0
) -> AsyncOpenSearch:
    """An async client of SSG_OPENSEARCH_URL with the configured credentials and CA."""
    return AsyncOpenSearch(
        **opensearch_options(settings), timeout=timeout_seconds, max_retries=max_retries
    )

"""Client channels: retries for idempotent reads, message size limits, a default deadline,
and the current trace id (plus an optional bearer token) on every call."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import grpc

from ssg.platform.tracing import TRACE_METADATA_KEY, current_trace_id, new_trace_id

DEFAULT_DEADLINE_SECONDS = 5.0
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

TokenSource = str | Callable[[], str]


def retry_service_config(
    retryable: Iterable[str],
    *,
    max_attempts: int = 4,
    initial_backoff_seconds: float = 0.1,
    max_backoff_seconds: float = 2.0,
) -> str:
    """Service config JSON retrying UNAVAILABLE for the named methods or services.

    Each name is ``pkg.Service`` (every method) or ``pkg.Service/Method`` (a leading ``/`` is
    allowed). Only idempotent reads belong here: a retried write could apply twice.
    """
    names: list[dict[str, str]] = []
    for entry in retryable:
        service, _, method = entry.lstrip("/").partition("/")
        names.append({"service": service, "method": method} if method else {"service": service})
    if not names:
        return json.dumps({"methodConfig": []})
    policy = {
        "maxAttempts": max_attempts,
        "initialBackoff": f"{initial_backoff_seconds:g}s",
        "maxBackoff": f"{max_backoff_seconds:g}s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    return json.dumps({"methodConfig": [{"name": names, "retryPolicy": policy}]})


class PlatformClientInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Adds a default deadline, the current (or a fresh) trace id and an optional bearer token."""

    def __init__(
        self,
        default_deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        token: TokenSource | None = None,
    ) -> None:
        self._deadline = default_deadline_seconds
        self._token = token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        if TRACE_METADATA_KEY not in metadata:
            # Outside a request (a CLI, a job) there is no trace yet: start one here.
            metadata[TRACE_METADATA_KEY] = current_trace_id() or new_trace_id()
        if self._token is not None and "authorization" not in metadata:
            token = self._token() if callable(self._token) else self._token
            if token:
                metadata["authorization"] = f"Bearer {token}"
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=details.timeout if details.timeout is not None else self._deadline,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        """Unary call with platform metadata and deadline."""
        return await continuation(self._details(client_call_details), request)

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        """Server-streaming call with platform metadata and deadline."""
        return await continuation(self._details(client_call_details), request)

    async def intercept_stream_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request_iterator: Any
    ) -> Any:
        """Client-streaming call with platform metadata and deadline."""
        return await continuation(self._details(client_call_details), request_iterator)

    async def intercept_stream_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request_iterator: Any
    ) -> Any:
        """Bidi-streaming call with platform metadata and deadline."""
        return await continuation(self._details(client_call_details), request_iterator)


def channel(
    target: str,
    *,
    retryable: Iterable[str] = (),
    token: TokenSource | None = None,
    default_deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_attempts: int = 4,
    credentials: grpc.ChannelCredentials | None = None,
) -> grpc.aio.Channel:
    """A grpc.aio channel to target with the platform's client behaviour.

    ``retryable`` names the idempotent reads that may be retried on UNAVAILABLE (see
    retry_service_config). Without credentials the channel is plain text.
    """
    options = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", retry_service_config(retryable, max_attempts=max_attempts)),
    ]
    interceptors = [PlatformClientInterceptor(default_deadline_seconds, token)]
    if credentials is not None:
        return grpc.aio.secure_channel(
            target, credentials, options=options, interceptors=interceptors
        )
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)

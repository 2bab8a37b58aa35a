"""One combined grpc.aio server interceptor: RED metrics, trace id, access log, auth, error mapping.

A single interceptor that wraps each method handler once (cached per method) costs one extra
coroutine frame per call; four stacked interceptors would each re-resolve and re-wrap the
handler on every call. The work per call is ordered so that everything a failure needs
(trace id, start time) exists before anything can fail.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import jwt
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from pymongo.errors import ConnectionFailure

from ssg.platform.auth.tokens import ANONYMOUS, Identity, Role, TokenError, TokenVerifier
from ssg.platform.errors import DomainError, Unavailable, ValidationError
from ssg.platform.grpc.errors import to_rich_status
from ssg.platform.logging import log_fields
from ssg.platform.metrics import once_per_registry
from ssg.platform.tracing import TRACE_METADATA_KEY, accept_trace_id, bound_trace_id

log = logging.getLogger(__name__)
access_log = logging.getLogger("ssg.grpc.access")

AUTHORIZATION_KEY = "authorization"
PUBLIC: frozenset[Role] = frozenset({Role.PUBLIC})

# The grpc_code label values go-grpc-prometheus writes (Go's codes.Code.String()), so the
# standard dashboards and alert rules that match e.g. grpc_code=~"Unavailable|Internal" work.
GO_CODE_NAMES: dict[grpc.StatusCode, str] = {
    code: "".join(part.capitalize() for part in code.name.split("_")) for code in grpc.StatusCode
}
GO_CODE_NAMES[grpc.StatusCode.OK] = "OK"
GO_CODE_NAMES[grpc.StatusCode.CANCELLED] = "Canceled"

Decode = Callable[[bytes], Any]

MethodPolicy = Mapping[str, frozenset[Role]]
"""Full method name (``/pkg.Service/Method``) -> roles allowed; unlisted methods are public."""

_identity: contextvars.ContextVar[Identity] = contextvars.ContextVar(
    "ssg_identity", default=ANONYMOUS
)


def current_identity() -> Identity:
    """The verified caller of the RPC being served (ANONYMOUS outside a call or without token)."""
    return _identity.get()


def normalize_policy(policy: MethodPolicy | None) -> dict[str, frozenset[Role]]:
    """Policy keyed by ``/pkg.Service/Method`` (a missing leading slash is added)."""
    result: dict[str, frozenset[Role]] = {}
    for method, roles in (policy or {}).items():
        key = method if method.startswith("/") else "/" + method
        if not roles:
            raise ValueError(f"method policy for {key} allows no role at all")
        result[key] = frozenset(roles)
    return result


def authorize(
    identity: Identity, authenticated: bool, allowed: frozenset[Role], method: str
) -> None:
    """Raise grpc-mappable errors when identity may not call a method allowing roles."""
    if Role.PUBLIC in allowed:
        return
    if not authenticated:
        raise _Denied(grpc.StatusCode.UNAUTHENTICATED, f"{method} needs a bearer token")
    if not identity.has_any(allowed):
        wanted = ", ".join(sorted(allowed))
        raise _Denied(grpc.StatusCode.PERMISSION_DENIED, f"{method} needs one of roles: {wanted}")


def _cancellation_code(context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """DEADLINE_EXCEEDED when the call was cancelled because its deadline passed."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED


def decode_request(decode: Decode, body: bytes) -> Any:
    """The request message from its bytes; ValidationError (INVALID_ARGUMENT) when they are not one.

    grpc would answer UNKNOWN with the parser's exception class for bytes that do not parse;
    what a caller sends is a bad argument, never the server's failure.
    """
    try:
        return decode(body)
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        raise ValidationError.single(
            "request", f"is not a valid request message: {reason}"
        ) from None


class _Denied(Exception):
    """Auth outcome raised inside the wrapper; carries its own status code."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class TokenCache:
    """Remembers verified tokens until they expire, so a client reusing its token costs a dict lookup.

    Only successful verifications are cached, each no longer than its own ``exp``; a failed
    token is verified again on every call (no negative cache an attacker could fill).
    """

    def __init__(self, verifier: TokenVerifier, max_entries: int = 4096) -> None:
        self._verifier = verifier
        self._max = max_entries
        self._entries: dict[str, tuple[Identity, float]] = {}

    def identity(self, token: str) -> Identity:
        """Identity of a valid token; TokenError otherwise."""
        hit = self._entries.get(token)
        if hit is not None:
            if time.time() < hit[1]:
                return hit[0]
            del self._entries[token]
        identity = self._verifier.verify(token)
        # The signature was just checked; reading exp unverified is only to bound the cache.
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
        if isinstance(exp, int | float) and exp > time.time():
            if len(self._entries) >= self._max:
                self._entries.clear()  # crude but bounded; refilled by the next calls
            self._entries[token] = (identity, float(exp))
        return identity


@dataclass(frozen=True)
class _Metrics:
    started: Counter
    handled: Counter
    handling: Histogram


def _build_metrics(registry: CollectorRegistry) -> _Metrics:
    """The RED metrics (names as in go-grpc-prometheus) in a registry."""
    labels = ["grpc_type", "grpc_service", "grpc_method"]
    return _Metrics(
        started=Counter(
            "grpc_server_started_total",
            "Total number of RPCs started on the server.",
            labels,
            registry=registry,
        ),
        handled=Counter(
            "grpc_server_handled_total",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            [*labels, "grpc_code"],
            registry=registry,
        ),
        handling=Histogram(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
            [*labels, "grpc_code"],
            registry=registry,
        ),
    )


def _split_method(full: str) -> tuple[str, str]:
    service, _, method = full.lstrip("/").rpartition("/")
    return service, method


def _grpc_type(handler: grpc.RpcMethodHandler) -> str:
    if handler.request_streaming and handler.response_streaming:
        return "bidi_stream"
    if handler.request_streaming:
        return "client_stream"
    if handler.response_streaming:
        return "server_stream"
    return "unary"


class _MethodState:
    """Everything about one method that does not change between calls, resolved once."""

    def __init__(
        self, full_method: str, grpc_type: str, allowed: frozenset[Role], metrics: _Metrics
    ) -> None:
        service, method = _split_method(full_method)
        self.full_method = full_method
        self.service = service
        self.method = method
        self.allowed = allowed
        self.public = Role.PUBLIC in allowed
        label_values = (grpc_type, service, method)
        self._labels = label_values
        self.started = metrics.started.labels(*label_values)
        self._metrics = metrics
        # Children per status code, created on first use: labels() takes a lock and hashes.
        self._handled: dict[grpc.StatusCode, tuple[Any, Any]] = {}

    def finish(self, code: grpc.StatusCode, seconds: float) -> None:
        """Count a finished call and observe its latency."""
        children = self._handled.get(code)
        if children is None:
            values = (*self._labels, GO_CODE_NAMES[code])
            children = (
                self._metrics.handled.labels(*values),
                self._metrics.handling.labels(*values),
            )
            self._handled[code] = children
        children[0].inc()
        children[1].observe(seconds)


class _Call:
    """Per-call state shared by the wrapper's entry and exit (one small object per call)."""

    __slots__ = ("code", "start", "subject", "trace_id")

    def __init__(self, trace_id: str, start: float) -> None:
        self.trace_id = trace_id
        self.start = start
        self.code = grpc.StatusCode.OK
        self.subject = ANONYMOUS.subject


class PlatformInterceptor(grpc.aio.ServerInterceptor):
    """Metrics, trace id, access log, bearer-token auth with a method policy, error mapping."""

    def __init__(
        self,
        verifier: TokenVerifier | None,
        method_policy: MethodPolicy | None = None,
        *,
        registry: CollectorRegistry = REGISTRY,
        access_log_enabled: bool = True,
    ) -> None:
        self._tokens = TokenCache(verifier) if verifier is not None else None
        self._policy = normalize_policy(method_policy)
        self._metrics = once_per_registry(_build_metrics, registry)
        self._access_log = access_log_enabled
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        """Return the method's handler wrapped with the platform behaviour (cached per method)."""
        full_method: str = handler_call_details.method
        wrapped = self._wrapped.get(full_method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None:
            # Unknown method: grpc answers UNIMPLEMENTED; not cached, so callers cannot grow it.
            return None
        wrapped = self._wrap(full_method, handler)
        self._wrapped[full_method] = wrapped
        return wrapped

    # -- per-call pieces -------------------------------------------------------------------

    @staticmethod
    def _begin(state: _MethodState, context: grpc.aio.ServicerContext) -> tuple[_Call, str | None]:
        """Start the clock and count the call; return its state and the authorization header."""
        start = time.perf_counter()
        state.started.inc()
        trace_in: str | None = None
        auth: str | None = None
        for key, value in context.invocation_metadata() or ():
            if key == TRACE_METADATA_KEY:
                trace_in = value
            elif key == AUTHORIZATION_KEY:
                auth = value
        return _Call(accept_trace_id(trace_in), start), auth

    def _authenticate(self, state: _MethodState, auth: str | None, call: _Call) -> Identity:
        """Identity from the authorization header, checked against the method's policy."""
        identity = ANONYMOUS
        authenticated = False
        if auth is not None:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise _Denied(
                    grpc.StatusCode.UNAUTHENTICATED, "authorization must be 'Bearer <token>'"
                )
            if self._tokens is None:
                raise _Denied(grpc.StatusCode.UNAUTHENTICATED, "this server accepts no tokens")
            try:
                identity = self._tokens.identity(token.strip())
            except TokenError as exc:
                raise _Denied(grpc.StatusCode.UNAUTHENTICATED, f"invalid token: {exc}") from None
            authenticated = True
            call.subject = identity.subject
        if not state.public:
            authorize(identity, authenticated, state.allowed, state.full_method)
        return identity

    async def _fail(
        self, exc: BaseException, call: _Call, context: grpc.aio.ServicerContext
    ) -> None:
        """Abort the call with the status exc maps to (always raises grpc's AbortError)."""
        trailer = ((TRACE_METADATA_KEY, call.trace_id),)
        if isinstance(exc, _Denied):
            call.code = exc.code
            await context.abort(exc.code, str(exc), trailer)
        if isinstance(exc, ConnectionFailure):
            # The datastore is unreachable (e.g. restarting): not a bug, and worth a retry.
            exc = Unavailable(
                f"the service's database is unavailable; retry (trace id {call.trace_id})"
            )
        if isinstance(exc, DomainError):
            status = to_rich_status(exc, trailer)
            call.code = status.code
            await context.abort_with_status(status)
        # Anything else is a bug: the caller gets a generic message and the trace id to quote,
        # the log gets the stack trace.
        log.error("unhandled exception in RPC handler", exc_info=exc)
        call.code = grpc.StatusCode.INTERNAL
        await context.abort(
            grpc.StatusCode.INTERNAL, f"internal error (trace id {call.trace_id})", trailer
        )

    def _end(self, state: _MethodState, call: _Call) -> None:
        """Record metrics and write the access log line."""
        elapsed = time.perf_counter() - call.start
        state.finish(call.code, elapsed)
        if self._access_log and access_log.isEnabledFor(logging.INFO):
            log_fields(
                access_log,
                logging.INFO,
                "rpc",
                {
                    "trace_id": call.trace_id,
                    "grpc_service": state.service,
                    "grpc_method": state.method,
                    "grpc_code": GO_CODE_NAMES[call.code],
                    "duration_ms": round(elapsed * 1000, 3),
                    "subject": call.subject,
                },
            )

    @staticmethod
    def _code_after_abort(context: grpc.aio.ServicerContext) -> grpc.StatusCode:
        code = context.code()
        return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN

    # -- wrapping ------------------------------------------------------------------------

    def _wrap(self, full_method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        grpc_type = _grpc_type(handler)
        state = _MethodState(
            full_method, grpc_type, self._policy.get(full_method, PUBLIC), self._metrics
        )
        behavior = (
            handler.unary_unary
            or handler.unary_stream
            or handler.stream_unary
            or handler.stream_stream
        )
        # A single request is decoded inside the wrapper, so bytes that do not parse get a
        # deliberate status, the metrics and the access log like any other call.
        decode: Decode | None = None
        deserializer = handler.request_deserializer
        if not handler.request_streaming and deserializer is not None:
            decode, deserializer = deserializer, None
        if inspect.isasyncgenfunction(behavior):
            wrapped: Callable[..., Any] = self._wrap_generator(state, behavior, decode)
        elif inspect.iscoroutinefunction(behavior):
            wrapped = self._wrap_coroutine(state, behavior, decode)
        else:
            # Sync handlers would run in grpc's thread pool, outside this task's contextvars.
            raise TypeError(f"{full_method}: platform servers serve async servicers only")
        kwargs = {
            "request_deserializer": deserializer,
            "response_serializer": handler.response_serializer,
        }
        factory = {
            "unary": grpc.unary_unary_rpc_method_handler,
            "server_stream": grpc.unary_stream_rpc_method_handler,
            "client_stream": grpc.stream_unary_rpc_method_handler,
            "bidi_stream": grpc.stream_stream_rpc_method_handler,
        }[grpc_type]
        return factory(wrapped, **kwargs)

    def _wrap_coroutine(
        self,
        state: _MethodState,
        behavior: Callable[..., Awaitable[Any]],
        decode: Decode | None = None,
    ) -> Callable[..., Awaitable[Any]]:
        async def platform_handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
            call, auth = self._begin(state, context)
            with bound_trace_id(call.trace_id):
                try:
                    try:
                        identity = self._authenticate(state, auth, call)
                    except _Denied as exc:
                        await self._fail(exc, call, context)
                    if decode is not None:
                        request = decode_request(decode, request)
                    token = _identity.set(identity)
                    try:
                        context.set_trailing_metadata(((TRACE_METADATA_KEY, call.trace_id),))
                        response = await behavior(request, context)
                    finally:
                        _identity.reset(token)
                    code = context.code()
                    if code is not None:
                        call.code = code  # the servicer set a status without aborting
                    return response
                except grpc.aio.AbortError:
                    if call.code is grpc.StatusCode.OK:
                        call.code = self._code_after_abort(context)
                    raise
                except asyncio.CancelledError:
                    call.code = _cancellation_code(context)
                    raise
                except Exception as exc:
                    await self._fail(exc, call, context)
                finally:
                    self._end(state, call)

        return platform_handler

    def _wrap_generator(
        self,
        state: _MethodState,
        behavior: Callable[..., AsyncIterator[Any]],
        decode: Decode | None = None,
    ) -> Callable[..., AsyncIterator[Any]]:
        async def platform_stream_handler(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            call, auth = self._begin(state, context)
            # Yielding inside a ``with`` that sets a contextvar is unsafe only across tasks;
            # grpc drives this generator from the call's own task.
            with bound_trace_id(call.trace_id):
                try:
                    try:
                        identity = self._authenticate(state, auth, call)
                    except _Denied as exc:
                        await self._fail(exc, call, context)
                    if decode is not None:
                        request = decode_request(decode, request)
                    token = _identity.set(identity)
                    try:
                        context.set_trailing_metadata(((TRACE_METADATA_KEY, call.trace_id),))
                        async for item in behavior(request, context):
                            yield item
                    finally:
                        _identity.reset(token)
                    code = context.code()
                    if code is not None:
                        call.code = code
                except grpc.aio.AbortError:
                    if call.code is grpc.StatusCode.OK:
                        call.code = self._code_after_abort(context)
                    raise
                except (asyncio.CancelledError, GeneratorExit):
                    call.code = grpc.StatusCode.CANCELLED
                    raise
                except Exception as exc:
                    await self._fail(exc, call, context)
                finally:
                    self._end(state, call)

        return platform_stream_handler

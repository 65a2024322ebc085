"""The gRPC server bootstrap every Streamify service uses.

``serve(settings, registrations)`` runs a grpc.aio server with health checking, reflection,
Prometheus metrics and one interceptor that, for every call, in the handler's own task:

* takes the request id from ``x-request-id`` metadata (or makes one), puts it in the logging
  context and sends it back as trailing metadata ``x-request-id``;
* authenticates ``authorization: Bearer <jwt>`` (not for health, reflection or a service's
  ``public_methods``), refuses a caller the method is not for (``streamify.core.access``) and
  puts the Principal where ``auth.current_principal()`` finds it;
* validates each request message (``streamify.core.validation.validate``);
* maps ApiError to a rich status, NotImplementedError to UNIMPLEMENTED and anything else to
  INTERNAL "internal error (request id …)" (logged with its traceback, never sent);
* counts and times the call.

Handlers should be ``async def`` (unary or context.write streaming) or async generators.
Client-streaming handlers must consume the ``request_iterator`` argument (not
``context.read()``) for their messages to be validated.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict

import grpc
import grpc.aio
import prometheus_client
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from streamify.core import access, errors, token_keys
from streamify.core.auth import TokenVerifier, mint_token, principal_var
from streamify.core.errors import ApiError, to_rpc_status
from streamify.core.logs import get_logger
from streamify.core.logs import request_id as request_id_var

if TYPE_CHECKING:
    from streamify.core.config import Settings

__all__ = [
    "REQUEST_ID_KEY",
    "RPC_DURATION",
    "RPC_REQUESTS",
    "ServiceRegistration",
    "StreamifyInterceptor",
    "client_channel",
    "serve",
    "service_call_metadata",
]

log = get_logger(__name__)

REQUEST_ID_KEY = "x-request-id"
_AUTH_KEY = "authorization"
_MAX_REQUEST_ID_LEN = 128
_perf_counter = time.perf_counter
_urandom = os.urandom
_AbortError = grpc.aio.AbortError
# The interceptor wraps handlers of every message type. (A string: grpc's classes are generic
# only in their type stubs.)
_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"

RPC_REQUESTS = prometheus_client.Counter(
    "streamify_rpc_requests_total",
    "gRPC calls handled, by final status code.",
    ["service", "method", "code"],
)
RPC_DURATION = prometheus_client.Histogram(
    "streamify_rpc_duration_seconds",
    "Time from receiving a call to its last response (streams: until the stream ends).",
    ["service", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


@dataclass
class ServiceRegistration:
    name: str  # full service name, e.g. "streamify.v1.MetadataService"
    add_to_server: Callable[[Any, Any], None]  # e.g. add_MetadataServiceServicer_to_server
    servicer: object
    public_methods: frozenset[str] = frozenset()  # method names callable without a token


class ServeOptions(TypedDict, total=False):
    """serve()'s keyword options but `stop_event`, for a service's run() that takes that itself."""

    on_ready: Callable[[int], Any] | None
    reflect_all_v1: bool | None


class ServeOptionsWithStop(ServeOptions, total=False):
    """All of serve()'s keyword options, for a run(settings, **serve_options) that passes them on."""

    stop_event: asyncio.Event | None


# --- the interceptor --------------------------------------------------------------------------


class _Method:
    """Everything about one RPC method that does not change between calls."""

    __slots__ = ("_counters", "_duration", "authenticate", "name", "path", "service", "validate")

    def __init__(self, path: str, authenticate: bool, validate: bool) -> None:
        self.path = path
        service, _, name = path.lstrip("/").rpartition("/")
        self.service = service
        self.name = name
        self.authenticate = authenticate
        self.validate = validate
        self._duration = RPC_DURATION.labels(service, name)
        self._counters: dict[str, Any] = {"OK": RPC_REQUESTS.labels(service, name, "OK")}

    def observe(self, code: str, seconds: float) -> None:
        counter = self._counters.get(code)
        if counter is None:
            counter = self._counters[code] = RPC_REQUESTS.labels(self.service, self.name, code)
        counter.inc()
        self._duration.observe(seconds)


def _load_validator() -> Callable[[Any], list[Any]]:
    """The request validator. A server never runs without it: an import failure (a broken
    install, a missing dependency) stops the server at start with the reason."""
    from streamify.core.validation import validate

    return validate


def _code_name(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    try:
        code = context.code()
    except Exception:  # noqa: BLE001
        return "UNKNOWN"
    if isinstance(code, grpc.StatusCode):
        return str(code.name)  # str(): grpc is untyped, so .name is Any to mypy
    if isinstance(code, int):
        for c in grpc.StatusCode:
            if c.value[0] == code:
                return str(c.name)
    return "UNKNOWN"


class StreamifyInterceptor(grpc.aio.ServerInterceptor):
    """Request id, authentication, validation, error mapping and metrics for every call.

    The wrapped handler for a method is built once, on its first call, and reused."""

    def __init__(
        self,
        verifier: TokenVerifier,
        public_paths: frozenset[str] = frozenset(),
        validator: Callable[[Any], list[Any]] | None = None,
    ) -> None:
        self._verifier = verifier
        self._public = public_paths
        self._validator = validator
        self._handlers: dict[str, _Handler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        path = handler_call_details.method
        wrapped = self._handlers.get(path)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED
            return None
        wrapped = self._wrap(path, handler)
        self._handlers[path] = wrapped
        return wrapped

    # -- per call ------------------------------------------------------------------------

    def _begin(
        self, m: _Method, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tuple[str, str | None]:
        """Request id and authorization header from the metadata; sets the request id in the
        logging context and the trailing metadata. Never raises."""
        rid = auth = None
        for key, value in context.invocation_metadata() or ():
            if not isinstance(value, str):  # a binary (-bin) header
                continue
            if key == REQUEST_ID_KEY:
                rid = value
            elif key == _AUTH_KEY:
                auth = value
        if not rid or len(rid) > _MAX_REQUEST_ID_LEN:
            rid = _urandom(8).hex()
        request_id_var.set(rid)
        context.set_trailing_metadata(((REQUEST_ID_KEY, rid),))
        return rid, auth

    def _check(self, m: _Method, auth: str | None, request: Any) -> None:
        if m.authenticate:
            principal = self._verifier(auth)
            access.check(principal, m.path)
            principal_var.set(principal)
        if m.validate and request is not None:
            self._validate(request)

    def _validate(self, message: Any) -> None:
        try:
            violations = self._validator(message)  # type: ignore[misc]
        except ValueError as exc:
            # protovalidate's CEL fallback raises on values it cannot represent (for example a
            # Duration beyond its range): that is still the client's bad input.
            raise errors.invalid_argument(f"invalid request: {exc}") from None
        if violations:
            raise errors.invalid_argument(
                [(v.field, v.description, getattr(v, "rule_id", "") or "") for v in violations]
            )

    async def _validated(self, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for message in requests:
            self._validate(message)
            yield message

    @staticmethod
    def _status_for(
        m: _Method, exc: Exception, rid: str
    ) -> tuple[grpc.StatusCode, str, tuple[tuple[str, Any], ...]]:
        """The status to end a call with for an exception its handler (or a check) raised."""
        rid_md = ((REQUEST_ID_KEY, rid),)
        if isinstance(exc, ApiError):
            status = to_rpc_status(exc)
            return exc.code, status.details, status.trailing_metadata + rid_md
        if isinstance(exc, NotImplementedError):
            return grpc.StatusCode.UNIMPLEMENTED, f"method {m.path} is not implemented", rid_md
        if isinstance(exc, grpc.aio.AioRpcError) and exc.code() in _TRANSIENT_DOWNSTREAM:
            # A service this call depends on is briefly away (a replica restarting): the
            # caller's retry will succeed, so say so instead of INTERNAL.
            log.warning(
                "%s: a dependency answered %s (request id %s)", m.path, exc.code().name, rid
            )
            return (
                grpc.StatusCode.UNAVAILABLE,
                f"a service this call depends on is unavailable; retry (request id {rid})",
                rid_md,
            )
        log.error("unhandled error in %s (request id %s)", m.path, rid, exc_info=exc)
        return grpc.StatusCode.INTERNAL, f"internal error (request id {rid})", rid_md

    # -- wrapping --------------------------------------------------------------------------

    def _wrap(self, path: str, handler: _Handler) -> _Handler:
        infra = path.startswith("/grpc.")  # health, reflection
        m = _Method(
            path,
            authenticate=not infra and path not in self._public,
            validate=not infra and self._validator is not None,
        )
        kw = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(self._unary(m, handler.unary_unary), **kw)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(m, handler.stream_unary, streaming_request=True), **kw
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(self._stream(m, handler.unary_stream), **kw)
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._stream(m, handler.stream_stream, streaming_request=True), **kw
            )
        return handler

    def _admitted(self, m: _Method, auth: str | None, request: Any, streaming_request: bool) -> Any:
        """The request after authentication and validation (a request stream is validated
        message by message as the handler reads it)."""
        if streaming_request:
            self._check(m, auth, None)
            return self._validated(request) if m.validate else request
        self._check(m, auth, request)
        return request

    def _unary(
        self, m: _Method, behaviour: Callable[..., Any], streaming_request: bool = False
    ) -> Callable[..., Awaitable[Any]]:
        """Wrapper for a handler that returns one response (unary-unary, stream-unary)."""

        async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with _Observed(self, m, context) as call:
                result = behaviour(
                    self._admitted(m, call.auth, request, streaming_request), context
                )
                return await result if inspect.isawaitable(result) else result

        return wrapper

    def _stream(
        self, m: _Method, behaviour: Callable[..., Any], streaming_request: bool = False
    ) -> Callable[..., Any]:
        """Wrapper for a handler that streams responses (unary-stream, stream-stream)."""
        if inspect.iscoroutinefunction(behaviour):
            # Writes with `await context.write(...)` and returns None.
            async def coro_wrapper(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> None:
                async with _Observed(self, m, context) as call:
                    await behaviour(
                        self._admitted(m, call.auth, request, streaming_request), context
                    )

            return coro_wrapper

        async def gen_wrapper(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            responses: Any = None
            try:
                async with _Observed(self, m, context) as call:
                    responses = behaviour(
                        self._admitted(m, call.auth, request, streaming_request), context
                    )
                    if inspect.isawaitable(responses):
                        responses = await responses
                    if responses is None:
                        return
                    if hasattr(responses, "__aiter__"):
                        async for response in responses:
                            yield response
                    else:  # a plain generator: must not block (handlers should be async)
                        for response in responses:
                            yield response
            finally:
                aclose = getattr(responses, "aclose", None)
                if aclose is not None:
                    with contextlib.suppress(Exception):
                        await aclose()

        return gen_wrapper


class _Observed:
    """One call, whatever its shape: request id and credentials on entry; on exit the status
    of a failure (a handler's exception becomes a typed status, never a bare INTERNAL) and the
    call's metrics. A class, not @asynccontextmanager: it runs on every RPC."""

    __slots__ = ("_interceptor", "_m", "_context", "_start", "rid", "auth")

    def __init__(
        self,
        interceptor: StreamifyInterceptor,
        m: _Method,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        self._interceptor, self._m, self._context = interceptor, m, context

    async def __aenter__(self) -> _Observed:
        self._start = _perf_counter()
        self.rid, self.auth = self._interceptor._begin(self._m, self._context)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        code = "OK"
        try:
            if exc is None:
                return False
            if isinstance(exc, _AbortError):
                code = _code_name(self._context)
                return False
            if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
                code = "CANCELLED"
                return False
            if not isinstance(exc, Exception):
                return False
            status_code, details, trailing = self._interceptor._status_for(self._m, exc, self.rid)
            code = status_code.name
            await self._context.abort(status_code, details, trailing)  # raises
            return False
        finally:
            self._m.observe(code, _perf_counter() - self._start)


# --- serve --------------------------------------------------------------------------------------


def _bind_address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


async def serve(
    settings: Settings,
    registrations: Sequence[ServiceRegistration],
    *,
    on_ready: Callable[[int], Any] | None = None,
    stop_event: asyncio.Event | None = None,
    reflect_all_v1: bool | None = None,
) -> None:
    """Run the services until SIGTERM/SIGINT or `stop_event`, then shut down gracefully:
    health NOT_SERVING, then in-flight calls get `settings.shutdown_grace_seconds`.
    `on_ready(port)` (sync or async) is called once the server accepts calls.
    `reflect_all_v1` (default: settings.reflection_all_services, else off): reflection also
    lists every `streamify.v1` service, see all_v1_services()."""
    verifier = TokenVerifier(token_keys.trusted_keys(settings), settings.jwt_issuer)
    public_paths = frozenset(
        f"/{r.name}/{method}" for r in registrations for method in r.public_methods
    )
    interceptor = StreamifyInterceptor(verifier, public_paths, _load_validator())
    server = grpc.aio.server(interceptors=[interceptor], options=[("grpc.so_reuseport", 0)])

    names = [r.name for r in registrations]
    for r in registrations:
        r.add_to_server(r.servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if reflect_all_v1 is None:
        reflect_all_v1 = settings.reflection_all_services
    extra = [n for n in all_v1_services() if n not in names] if reflect_all_v1 else []
    reflection.enable_server_reflection(
        [*names, *extra, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )

    address = _bind_address(settings.grpc_host, settings.grpc_port)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise errors.ConfigurationError(f"cannot listen on {address}: {exc}") from exc
    if not port:
        raise errors.ConfigurationError(f"cannot listen on {address} (in use?)")

    stop = stop_event if stop_event is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    metrics_httpd = None
    try:
        if settings.metrics_port:
            metrics_httpd, _ = prometheus_client.start_http_server(
                settings.metrics_port, addr=settings.grpc_host
            )
        await server.start()
        for name in ["", *names]:
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    loop.add_signal_handler(sig, _on_signal, stop, sig)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
        log.info(
            "serving %s on %s (metrics port %s)",
            ", ".join(names) or "no services",
            _bind_address(settings.grpc_host, port),
            settings.metrics_port or "off",
        )
        if on_ready is not None:
            ready = on_ready(port)
            if inspect.isawaitable(ready):
                await ready
        await stop.wait()
    finally:
        log.info("shutting down: health NOT_SERVING, %ss grace", settings.shutdown_grace_seconds)
        await health_servicer.enter_graceful_shutdown()
        await server.stop(settings.shutdown_grace_seconds)
        for sig in installed:
            loop.remove_signal_handler(sig)
        if metrics_httpd is not None:
            metrics_httpd.shutdown()
            metrics_httpd.server_close()
        log.info("stopped")


# --- reflection behind the gateway ---------------------------------------------------------------
# Behind the Envoy gateway, `grpcurl GATEWAY list` is answered by whichever replica the reflection
# route reaches; with this option every service advertises the whole `streamify.v1` API (all the
# descriptors are in every process, since the generated stubs live in the shared package).


def all_v1_services() -> list[str]:
    """Full names of every service in the generated `streamify.v1` stubs, sorted."""
    import importlib
    import pkgutil

    import streamify.v1 as v1

    found: set[str] = set()
    for info in pkgutil.iter_modules(v1.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"streamify.v1.{info.name}")
            found.update(s.full_name for s in module.DESCRIPTOR.services_by_name.values())
    return sorted(found)


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    log.info("received %s", sig.name)
    stop.set()


# --- client side ----------------------------------------------------------------------------


_TRANSIENT_DOWNSTREAM = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})

# Calls between services are reads or carry request ids, so retrying UNAVAILABLE is safe;
# round_robin spreads them over every address the target resolves to (several replicas in an
# `ipv4:a:p,b:p` target, or a headless Service's DNS name), and skips a replica that is down.
_INTERNAL_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)


def client_channel(target: str) -> grpc.aio.Channel:
    """An insecure grpc.aio channel for service-to-service calls inside the mesh."""
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.enable_retries", 1),
            ("grpc.service_config", _INTERNAL_SERVICE_CONFIG),
        ],
    )


_SERVICE_TOKEN_TTL = 300
_SERVICE_TOKEN_REFRESH = 60  # mint a new one when less than this is left
_service_tokens: dict[
    tuple[token_keys.SigningKey, str], tuple[tuple[tuple[str, str], ...], float]
] = {}


def service_call_metadata(settings: Settings, identity: str) -> tuple[tuple[str, str], ...]:
    """Metadata for a call to another Streamify service as `identity` (token_keys): a
    short-lived service token (cached until a minute before it expires) and, inside an RPC,
    its request id."""
    key = token_keys.signing_key(settings, identity)
    cache_key = (key, settings.jwt_issuer)
    now = time.time()
    cached = _service_tokens.get(cache_key)
    if cached is None or cached[1] - now < _SERVICE_TOKEN_REFRESH:
        token = mint_token(
            key,
            kind="service",
            ttl_seconds=_SERVICE_TOKEN_TTL,
            issuer=settings.jwt_issuer,
        )
        cached = (((_AUTH_KEY, f"Bearer {token}"),), now + _SERVICE_TOKEN_TTL)
        _service_tokens[cache_key] = cached
    rid = request_id_var.get()
    if rid:
        return cached[0] + ((REQUEST_ID_KEY, rid),)
    return cached[0]

"""The server interceptor every service runs.

It does four things on every RPC, in one wrapper so they agree on the
outcome: maps ServiceError (and unexpected exceptions) to gRPC status codes
with clear messages (request bytes that do not parse included: INVALID_ARGUMENT,
where grpcio would answer UNKNOWN and log a traceback), records the go-grpc-prometheus server metrics with the
final code, counts calls in flight so shutdown can drain them (while
draining, new calls other than health checks get UNAVAILABLE), and names this
node in the trailing metadata (`semcom-node`), so that a caller balancing over
a pool knows which backend answered, errors included.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from .errors import InvalidInput, ServiceError, Unavailable, quoted
from .metrics import GrpcServerMetrics
from .rpc import NODE_METADATA
from .tls import check_admin

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000  # characters of a status message; gRPC's default metadata limit is 8 KiB


HEALTH_SERVICE = "grpc.health.v1.Health"


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: GrpcServerMetrics, admin_token: str = ""):
        self._metrics = metrics
        self._admin_token = admin_token  # state-changing calls need it (tls.check_admin); "": open
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._draining = False
        self.node_name = ""  # set once the server has bound its port (ServiceServer.start)

    async def drain(self, timeout: float) -> bool:
        """Refuses new calls (but health checks) and waits for those in flight; False on timeout."""
        self._draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def _enter(self, service: str, method: str, context) -> bool:
        """Admits a call unless draining; the caller must _leave() an admitted one. Health checks are
        always admitted and never counted: a pool's health Watch stays open for the connection's life."""
        if self.node_name:
            context.set_trailing_metadata(((NODE_METADATA, self.node_name),))
        if service == HEALTH_SERVICE:
            return True
        if self._draining:
            return False
        self._in_flight += 1
        self._idle.clear()
        return True

    def _leave(self, service: str) -> None:
        if service == HEALTH_SERVICE:
            return
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return None
        service, _, method = details.method.lstrip("/").rpartition("/")
        deserializer = _tolerant(handler.request_deserializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, "unary", service, method),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                self._wrap_stream(handler.stream_stream, "bidi_stream", service, method, streamed_requests=True),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, "server_stream", service, method),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # client streaming: none of our services has one

    def _wrap_unary(self, behavior, rpc_type: str, service: str, method: str):
        async def wrapped(request, context: grpc.aio.ServicerContext):
            call = _Call(self._metrics, rpc_type, service, method, context)
            if not self._enter(service, method, context):
                await call.refuse()
            try:
                check_admin(self._admin_token, f"/{service}/{method}", context.invocation_metadata())
                return await behavior(_parsed(request), context)
            except BaseException as error:  # noqa: BLE001 - re-raised or turned into a status
                await call.fail(error)
            finally:
                call.finish()
                self._leave(service)
                _trim_soon()  # once the response is out, large requests' memory goes back

        return wrapped

    def _wrap_stream(self, behavior, rpc_type: str, service: str, method: str, streamed_requests: bool = False):
        if not inspect.isasyncgenfunction(behavior):
            # A streaming handler may also be a coroutine that calls context.write().
            return self._wrap_unary(behavior, rpc_type, service, method)

        async def wrapped(request, context: grpc.aio.ServicerContext) -> AsyncIterator:
            call = _Call(self._metrics, rpc_type, service, method, context)
            if not self._enter(service, method, context):
                await call.refuse()
            try:
                check_admin(self._admin_token, f"/{service}/{method}", context.invocation_metadata())
                requests = _parsed_stream(request) if streamed_requests else _parsed(request)
                async for response in behavior(requests, context):
                    yield response
            except BaseException as error:  # noqa: BLE001
                await call.fail(error)
            finally:
                call.finish()
                self._leave(service)
                _trim_soon()

        return wrapped


class _Unparsed:
    """What the tolerant deserializer gives for bytes that are not a valid message: the handler raises."""

    def __init__(self, message_type: str, error: Exception):
        self.error = InvalidInput(f"request: not a valid {message_type} message ({type(error).__name__}: "
                                  f"{quoted(str(error))})")


# A request this large leaves its memory with the allocator when freed: glibc keeps such a heap to
# reuse it, and RSS ratchets up with each large frame (3 frames of 48 MiB took the channel emulator
# from 63 to 242 MiB). After calls with one, the freed memory is handed back (malloc_trim).
LARGE_REQUEST_BYTES = 1 << 20
_TRIM_DELAY_SECONDS = 0.2  # after the response (as large) has been serialized and sent


class _LargeRequests:
    """Large requests deserialized since the last trim, and whether a trim is scheduled (shared by the
    loop's calls, so that concurrent ones schedule one trim)."""

    pending = 0
    scheduled = False


def _release_freed_memory() -> None:
    _LargeRequests.pending, _LargeRequests.scheduled = 0, False
    _MALLOC_TRIM(0)


def _trim_soon() -> None:
    """After a call that had a large request: one trim, once its response (as large) is out."""
    if not _LargeRequests.pending or _LargeRequests.scheduled:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # a handler closed outside its loop (shutdown): nothing to schedule on
        return
    _LargeRequests.scheduled = True
    loop.call_later(_TRIM_DELAY_SECONDS, _release_freed_memory)


def _malloc_trim():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim with
        return None


_MALLOC_TRIM = _malloc_trim()


def _tolerant(deserializer):
    """The handler's request deserializer, giving an _Unparsed for bytes it cannot parse instead of
    raising (which grpcio answers with UNKNOWN)."""
    if deserializer is None:
        return None
    owner = getattr(deserializer, "__self__", None)  # Message.FromString: the message class
    message_type = owner.DESCRIPTOR.full_name if hasattr(owner, "DESCRIPTOR") else "request"

    def deserialize(data: bytes):
        if len(data) >= LARGE_REQUEST_BYTES and _MALLOC_TRIM is not None:  # not glibc: nothing to trim
            _LargeRequests.pending += 1
        try:
            return deserializer(data)
        except Exception as error:  # noqa: BLE001 - protobuf's DecodeError and anything else a parser raises
            return _Unparsed(message_type, error)

    return deserialize


def _parsed(request):
    """The request, or InvalidInput raised for bytes that did not parse."""
    if isinstance(request, _Unparsed):
        raise request.error
    return request


async def _parsed_stream(requests: AsyncIterator) -> AsyncIterator:
    """A request stream, raising InvalidInput at the first message that did not parse."""
    async for request in requests:
        yield _parsed(request)


class _Call:
    """One RPC's bookkeeping: its start time and final status code."""

    def __init__(self, metrics: GrpcServerMetrics, rpc_type: str, service: str, method: str, context):
        self._metrics = metrics
        self._labels = (rpc_type, service, method)
        self._context = context
        self._start = time.perf_counter()
        self._code: grpc.StatusCode | None = None
        metrics.started.labels(*self._labels).inc()

    async def fail(self, error: BaseException) -> None:
        if isinstance(error, ServiceError):
            self._code = grpc.StatusCode[error.status]
            # Messages quote input (quoted() keeps each quote short); this bounds the whole of it, so that
            # no message can exceed a caller's metadata limit.
            await self._context.abort(self._code, quoted(str(error), MESSAGE_LIMIT))
        if isinstance(error, asyncio.CancelledError):
            self._code = grpc.StatusCode.CANCELLED
            raise error
        if _is_abort(error):
            raise error  # the servicer aborted itself; its code is on the context
        log.exception("unexpected error in %s/%s", self._labels[1], self._labels[2])
        self._code = grpc.StatusCode.INTERNAL
        await self._context.abort(grpc.StatusCode.INTERNAL,
                                  quoted(f"internal error: {type(error).__name__}: {error}", MESSAGE_LIMIT))

    async def refuse(self) -> None:
        """A call that arrived while the server drains: UNAVAILABLE (a pool retries it elsewhere), counted."""
        try:
            await self.fail(Unavailable("server is shutting down"))
        finally:
            self.finish()

    def finish(self) -> None:
        code = self._code or _code_of(self._context) or grpc.StatusCode.OK
        self._metrics.handled.labels(*self._labels, code.name).inc()
        self._metrics.handling_seconds.labels(*self._labels).observe(time.perf_counter() - self._start)


def _is_abort(error: BaseException) -> bool:
    return type(error).__name__ == "AbortError"


def _code_of(context) -> grpc.StatusCode | None:
    """The code a servicer set on the context, as a grpc.StatusCode (aio gives an int)."""
    code = context.code()
    if code is None or isinstance(code, grpc.StatusCode):
        return code
    return next((c for c in grpc.StatusCode if c.value[0] == code), None)

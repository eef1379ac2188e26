"""Server setup shared by the three services.

A ServiceServer wraps one grpc.aio server with the service's servicers, the
ServiceInterceptor, grpc.health.v1 (NOT_SERVING until the service's models
are loaded, NOT_SERVING again on shutdown), server reflection and a
Prometheus endpoint on its own port; with --health-port, a second, plaintext
server that answers grpc.health.v1 alone (the same status), for probes that
cannot do TLS. `run_until_signal` serves until SIGTERM
or SIGINT, then stops gracefully: calls in flight get `grace_seconds`.

Create it inside the running event loop (gRPC aio objects bind to the loop).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from .config import ServerSettings
from .interceptors import ServiceInterceptor
from .metrics import GrpcServerMetrics, start_metrics_server
from .rpc import server_options

log = logging.getLogger(__name__)

_LINGER_SECONDS = 0.2


class ServiceServer:
    def __init__(self, name: str, settings: ServerSettings, registry: CollectorRegistry):
        self.name = name
        self.settings = settings
        self.registry = registry
        self.interceptor = ServiceInterceptor(GrpcServerMetrics(registry), settings.admin_token)
        self.server = grpc.aio.server(
            interceptors=[self.interceptor],
            options=server_options(settings.max_message_bytes, int(settings.max_connection_age_seconds * 1000)),
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._service_names: list[str] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._metrics_httpd = None
        self._health_server: grpc.aio.Server | None = None
        self.port = 0
        self.metrics_port = 0
        self.health_port = -1

    def add_service(self, service_name: str, add_to_server: Callable, servicer: object,
                    close: Callable[[], Awaitable[None]] | None = None) -> None:
        """Registers a servicer, e.g. add_service('semcom.v1.Receiver', add_ReceiverServicer_to_server, s).
        close: stops the servicer's own background work (the receiver's batcher) once the server has."""
        add_to_server(servicer, self.server)
        self._service_names.append(service_name)
        if close is not None:
            self._closers.append(close)

    async def start(self, load: Callable[[], Awaitable[None]] | None = None) -> None:
        """Binds and starts serving (NOT_SERVING), runs `load`, then reports SERVING."""
        for name in ("", *self._service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        reflection.enable_server_reflection(
            (*self._service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self.server,
        )
        address = f"{self.settings.host}:{self.settings.port}"
        tls = self.settings.tls
        self.port = (self.server.add_secure_port(address, tls.server_credentials()) if tls.enabled
                     else self.server.add_insecure_port(address))
        if self.port == 0:
            raise OSError(f"{self.name}: could not bind {self.settings.host}:{self.settings.port}")
        self.interceptor.node_name = self.settings.node_name or f"{socket.gethostname()}:{self.port}"
        if self.settings.health_port >= 0:
            await self._start_health_server()
        try:
            await self.server.start()
        except BaseException:
            if self._health_server is not None:
                await self._health_server.stop(0)  # no probe may see a server that never started
            raise
        self._metrics_httpd, self.metrics_port = start_metrics_server(
            self.registry, self.settings.metrics_host, self.settings.metrics_port
        )
        if load is not None:
            await load()
        for name in ("", *self._service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._announce_ready()

    async def _start_health_server(self) -> None:
        self._health_server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._health_server)
        self.health_port = self._health_server.add_insecure_port(f"{self.settings.host}:{self.settings.health_port}")
        if self.health_port == 0:
            raise OSError(f"{self.name}: could not bind --health-port {self.settings.host}:{self.settings.health_port}")
        await self._health_server.start()

    def _announce_ready(self) -> None:
        ready = {
            "service": self.name,
            "address": f"{self.settings.host}:{self.port}",
            "port": self.port,
            "metrics_port": self.metrics_port,
            "health_port": self.health_port,
            "node_name": self.interceptor.node_name,
            "pid": os.getpid(),
        }
        security = ("mutual TLS" if self.settings.tls_ca else "TLS") if self.settings.tls.enabled else "plaintext"
        log.info("%s serving (%s) on %s:%d, metrics on %s:%d", self.name, security, self.settings.host, self.port,
                 self.settings.metrics_host, self.metrics_port)
        if self.settings.ready_file:
            temporary = self.settings.ready_file + ".tmp"
            with open(temporary, "w") as handle:
                handle.write(json.dumps(ready) + "\n")
            os.replace(temporary, self.settings.ready_file)  # readers never see half a file

    async def stop(self, grace: float | None = None) -> None:
        """Reports NOT_SERVING, refuses new calls, lets calls in flight finish within `grace`.

        The drain is ours rather than grpc's own stop(grace): that closes each
        connection as its last call completes, and a socket closed with client
        frames still unread is reset, which can destroy the response just
        sent. Lingering a moment after the drain lets clients read it first.
        """
        grace = self.settings.grace_seconds if grace is None else grace
        log.info("%s stopping (grace %.1f s)", self.name, grace)
        await self.health.enter_graceful_shutdown()
        if grace > 0:
            if await self.interceptor.drain(grace):
                await asyncio.sleep(min(_LINGER_SECONDS, grace))
            else:
                log.warning("%s: calls still in flight after %.1f s; cancelling them", self.name, grace)
        # Only health Watch streams (a pool's clients keep them open) can be left after the drain: waiting
        # out the rest of the grace for them would only delay the exit.
        await self.server.stop(0)
        if self._health_server is not None:
            await self._health_server.stop(0)
        for close in self._closers:
            await close()
        if self._metrics_httpd is not None:
            self._metrics_httpd.shutdown()
            self._metrics_httpd.server_close()


async def run_until_signal(server: ServiceServer) -> None:
    """Serves until SIGTERM or SIGINT, then stops gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop()


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("SEMCOM_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

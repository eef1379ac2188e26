"""gRPC settings shared by servers and clients, so both sides agree.

Message size limits are set on both ends (gRPC's default receive limit is
4 MiB; a 2048x2048 uncoded frame is ~48 MiB). Keepalive pings are allowed by
the server at the rate the clients send them.

Retries happen at the edge only, and within a budget. The clients (the CLI,
the load generator, tests: sync_channel, and aio_channel(retries=True)) retry
UNAVAILABLE a few times with backoff, under gRPC's retry throttling: once about
half their failures in a row have spent the token bucket, they stop retrying
until calls succeed again. The services' own hops (transmitter -> channel ->
receiver) do not retry: each hop passing UNAVAILABLE straight back is what keeps
one client call to one attempt per hop (with every hop retrying, a dead
receiver saw 3.5 Forward attempts per client call). The one exception is a
pool's idempotent call (the receivers' Decode: the same frame gives the same
image on any receiver), retried once, on another backend, within the same
retry throttling.

A service's hop is a pool (`Downstream`): one address, a DNS name that
resolves to several (a Kubernetes headless Service), or a comma-separated list
of IP addresses. gRPC balances round-robin over the backends and watches each
one's grpc.health.v1 status, so a backend that reports NOT_SERVING (loading,
draining) or dies leaves the rotation at once and rejoins when it serves again.
"""

from __future__ import annotations

import ipaddress
import json

import grpc
from prometheus_client import Counter

from .errors import ServiceError
from .tls import TlsFiles

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
KEEPALIVE_TIME_MS = 30_000
# A server closes (gracefully: calls in flight finish within the grace) each connection this old, so that
# a pool's clients reconnect and resolve their DNS name again: receivers a headless Service gains (scale-out,
# a rolling update's new IPs) get traffic within about this long. Long calls get the grace.
MAX_CONNECTION_AGE_MS, MAX_CONNECTION_AGE_GRACE_MS = 30_000, 120_000
NODE_METADATA = "semcom-node"  # trailing metadata: the node that answered (ServerSettings.node_name)
UNANSWERED = "unanswered"  # the backend label of a call no backend answered (none reachable, deadline)

_RETRY_THROTTLING = {"maxTokens": 10, "tokenRatio": 0.1}
_RETRY_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
        # A failure takes a token, a success gives back 0.1; below half of the 10, no more retries.
        "retryThrottling": _RETRY_THROTTLING,
    }
)


def server_options(max_message_bytes: int,
                   max_connection_age_ms: int = MAX_CONNECTION_AGE_MS) -> list[tuple[str, object]]:
    return [
        ("grpc.max_connection_age_ms", max_connection_age_ms),
        ("grpc.max_connection_age_grace_ms", MAX_CONNECTION_AGE_GRACE_MS),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_TIME_MS // 2),
        ("grpc.http2.max_ping_strikes", 0),
    ]


def pool_service_config(service: str, idempotent_methods: tuple[str, ...] = ()) -> str:
    """Round-robin over the backends that report `service` SERVING; `idempotent_methods` are retried
    once on UNAVAILABLE (round-robin's next pick: another backend while several are in rotation),
    throttled as the edge's."""
    config: dict = {"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": service}}
    if idempotent_methods:
        config["methodConfig"] = [{
            "name": [{"service": service, "method": method} for method in idempotent_methods],
            "retryPolicy": {"maxAttempts": 2, "initialBackoff": "0.01s", "maxBackoff": "0.1s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
        }]
        config["retryThrottling"] = _RETRY_THROTTLING
    return json.dumps(config)


def pool_target(addresses: str, flag: str) -> tuple[str, bool]:
    """The gRPC target of `addresses` and whether it is a list. One address passes as it is (a DNS name is
    resolved to all its addresses by gRPC, again on reconnection); a list must hold IP addresses."""
    entries = [entry.strip() for entry in addresses.split(",")]
    if not all(entries):
        raise ValueError(f"{flag}: {addresses!r} has an empty address")
    if len(entries) == 1:
        return entries[0], False
    hosts = []
    for entry in entries:
        host, separator, port = entry.rpartition(":")
        try:
            if not separator or not port.isdigit():
                raise ValueError
            hosts.append(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            raise ValueError(f"{flag}: {entry!r} in a list must be IP:PORT ([IPv6]:PORT); for names, give one DNS "
                             "name that resolves to every backend (a Kubernetes headless Service, a compose service "
                             "with replicas) as the only address") from None
    versions = {host.version for host in hosts}
    if len(versions) > 1:
        raise ValueError(f"{flag}: {addresses!r} mixes IPv4 and IPv6 addresses; use one family")
    return f"ipv{versions.pop()}:{','.join(entries)}", True


def channel_options(max_message_bytes: int, retries: bool = True) -> list[tuple[str, object]]:
    """retries: the edge's policy (retry UNAVAILABLE, throttled); False for a service's own hops."""
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        # Without the policy gRPC still retries, transparently, a call that never left this client.
        ("grpc.enable_retries", 1),
        *([("grpc.service_config", _RETRY_SERVICE_CONFIG)] if retries else []),
        # A restarted peer is found again within about a second (gRPC's default backoff grows to 120 s).
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]


# The TLS files of this process's client calls where a caller names none: the CLI sets them from
# `semcom --tls-ca ...` (or SEMCOM_TLS_*); plaintext by default.
client_tls = TlsFiles()


def aio_channel(address: str, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, retries: bool = False,
                tls: TlsFiles | None = None, options: list[tuple[str, object]] | None = None) -> grpc.aio.Channel:
    """An asyncio channel (create it inside the running loop); a client's, which retries (retries=True, as
    sync_channel), or with `options` (a Downstream's). TLS with `tls` (default: client_tls)."""
    options, tls = options or channel_options(max_message_bytes, retries), tls or client_tls
    if tls.enabled:
        return grpc.aio.secure_channel(address, tls.channel_credentials(), options=options)
    return grpc.aio.insecure_channel(address, options=options)


def sync_channel(address: str, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 tls: TlsFiles | None = None) -> grpc.Channel:
    """A blocking channel, for command-line clients and tests; TLS with `tls` (default: client_tls)."""
    options, tls = channel_options(max_message_bytes), tls or client_tls
    if tls.enabled:
        return grpc.secure_channel(address, tls.channel_credentials(), options=options)
    return grpc.insecure_channel(address, options=options)


class Downstream:
    """A service's hop to the next one: a pool of one or more backends serving `service`.

    `call` awaits a stub call made on `grpc_channel` with the caller's remaining deadline; failures keep
    their code and name the hop (a dead receiver behind the channel emulator reaches the client as
    UNAVAILABLE "channel emulator at 127.0.0.1:50052: receiver at 127.0.0.1:50053: ..."), and
    every call is counted by the backend that answered. Over TLS, a list of IP addresses is checked
    against `tls_name` (the name `semcom certs` puts in that service's certificate), since no one
    address names the pool. Create it inside the running event loop.
    """

    def __init__(self, hop: str, addresses: str, service: str, flag: str, calls: Counter, *,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, tls: TlsFiles | None = None, tls_name: str = "",
                 idempotent_methods: tuple[str, ...] = ()):
        self.hop, self.address, self._calls = hop, addresses, calls
        target, is_list = pool_target(addresses, flag)
        options = [*channel_options(max_message_bytes, retries=False),
                   ("grpc.service_config", pool_service_config(service, idempotent_methods)),
                   # gRPC's default: a DNS name resolved again at most every 30 s, whatever asks it to.
                   ("grpc.dns_min_time_between_resolutions_ms", 1000)]
        if idempotent_methods:
            # A request over the retry buffer (256 KiB by default) is never retried: frames reach 64 MiB.
            options += [("grpc.per_rpc_retry_buffer_size", max_message_bytes),
                        ("grpc.retry_buffer_size", 2 * max_message_bytes)]
        if is_list and tls_name and (tls or client_tls).enabled:
            options.append(("grpc.ssl_target_name_override", tls_name))
        self.grpc_channel = aio_channel(target, tls=tls, options=options)

    async def call(self, call):
        try:
            response = await call
        except grpc.aio.AioRpcError as error:
            self._count(error.trailing_metadata(), error.code().name)
            raise ServiceError(f"{self.hop} at {self.address}: {error.details()}", status=error.code().name) from None
        self._count(await call.trailing_metadata(), "OK")
        return response

    def _count(self, metadata, code: str) -> None:
        node = next((value for key, value in metadata or () if key == NODE_METADATA), UNANSWERED)
        self._calls.labels(node, code).inc()

    async def close(self) -> None:
        await self.grpc_channel.close()


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
receiver saw 3.5 Forward attempts per client call).
"""

from __future__ import annotations

import json

import grpc

from .errors import ServiceError
from .tls import TlsFiles

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
KEEPALIVE_TIME_MS = 30_000

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
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
    }
)


def server_options(max_message_bytes: int) -> list[tuple[str, object]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_TIME_MS // 2),
        ("grpc.http2.max_ping_strikes", 0),
    ]


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
                tls: TlsFiles | None = None) -> grpc.aio.Channel:
    """An asyncio channel (create it inside the running loop); a service's hop by default, which does
    not retry (retries=True: a client's, as sync_channel). TLS with `tls` (default: client_tls)."""
    options, tls = channel_options(max_message_bytes, retries), tls or client_tls
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


async def call_downstream(hop: str, address: str, call):
    """Awaits a downstream call; failures keep their code and name the hop.

    `call` is the awaitable of a stub call made with the caller's remaining
    deadline. A dead receiver behind the channel emulator reaches the client
    as UNAVAILABLE "channel emulator at 127.0.0.1:50052: receiver at
    127.0.0.1:50053: failed to connect to all addresses; ...".
    """
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        raise ServiceError(f"{hop} at {address}: {error.details()}", status=error.code().name) from None


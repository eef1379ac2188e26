"""gRPC settings shared by servers and clients, so both sides agree.

Message size limits are set on both ends (gRPC's default receive limit is
4 MiB; a 2048x2048 uncoded frame is ~48 MiB). Keepalive pings are allowed by
the server at the rate the clients send them. Clients retry UNAVAILABLE a few
times with backoff (only calls that never reached a server are retried by gRPC).
"""

from __future__ import annotations

import json

import grpc

from .errors import ServiceError

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
        ]
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


def channel_options(max_message_bytes: int) -> list[tuple[str, object]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", _RETRY_SERVICE_CONFIG),
        # A restarted peer is found again within about a second (gRPC's default backoff grows to 120 s).
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]


def aio_channel(address: str, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> grpc.aio.Channel:
    """An insecure asyncio channel (create it inside the running loop)."""
    return grpc.aio.insecure_channel(address, options=channel_options(max_message_bytes))


def sync_channel(address: str, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> grpc.Channel:
    """An insecure blocking channel, for command-line clients and tests."""
    return grpc.insecure_channel(address, options=channel_options(max_message_bytes))


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


"""Prometheus metrics: gRPC server metrics in the go-grpc-prometheus style,
bucket sets that fit the quantities, and the per-service HTTP endpoint.

Each service owns a CollectorRegistry (not the global one), so several
services can run in one process, as the tests do, without name clashes.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

# From 1 ms (a channel hop) to 2 minutes (a many-step diffusion decode on CPU).
LATENCY_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
PSNR_DECIBELS_BUCKETS = tuple(float(b) for b in range(0, 62, 4))
SNR_DECIBELS_BUCKETS = tuple(float(b) for b in range(-30, 52, 2))
RATIO_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1.0)
BANDWIDTH_RATIO_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
CHANNEL_USES_BUCKETS = tuple(float(4**e) for e in range(3, 13))  # 64 .. 16.8M complex symbols


class GrpcServerMetrics:
    """grpc_server_started_total, grpc_server_handled_total and grpc_server_handling_seconds."""

    def __init__(self, registry: CollectorRegistry):
        labels = ["grpc_type", "grpc_service", "grpc_method"]
        self.started = Counter(
            "grpc_server_started", "RPCs started on the server.", labels, registry=registry
        )
        self.handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, regardless of success or failure.",
            [*labels, "grpc_code"],
            registry=registry,
        )
        self.handling_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Response latency of RPCs handled by the server, until the last response.",
            labels,
            buckets=LATENCY_SECONDS_BUCKETS,
            registry=registry,
        )


def backend_calls(registry: CollectorRegistry, service: str, downstream: str) -> Counter:
    """semcom_<service>_backend_calls_total: this service's calls to its downstream pool, by the backend
    that answered (its node name; "unanswered" where none did) and the final code."""
    return Counter(f"semcom_{service}_backend_calls", f"Calls to the {downstream} pool, by the backend that "
                   "answered (its --node-name) and final gRPC code.", ["backend", "grpc_code"], registry=registry)


def start_metrics_server(registry: CollectorRegistry, host: str, port: int) -> tuple[object, int]:
    """Serves /metrics on a background thread; returns (server, bound port) (port 0 picks one)."""
    httpd, _thread = start_http_server(port, addr=host, registry=registry)
    return httpd, httpd.server_port

"""Deploy and observe, with the real parts: docker-compose validates the
compose file, a real Prometheus (Debian's) scrapes the services with the
deploy scrape config and evaluates every dashboard expression, promtool lints
each service's metrics, and the load client and health probe run against
real servers. Tools the machine lacks skip with the reason printed (-ra)."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from helpers import free_port, sample_png
from semcom.common.wire.pb import transmitter_pb2
from semcom.tools.load import check_target, run_load

pytestmark = pytest.mark.deploy  # docker-compose, Prometheus, promtool and the dashboard

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SEMCOM = [sys.executable, "-m", "semcom.tools.cli"]


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(reason=f"{tool} is not installed (make test installs it with apt-get where it can)")
    return path


def dashboard_module():
    spec = importlib.util.spec_from_file_location("make_dashboard", DEPLOY / "grafana" / "make_dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "semcom.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


# --- compose and dashboards ------------------------------------------------------------------------------------


def test_docker_compose_validates_the_compose_file():
    result = subprocess.run([require("docker-compose"), "-f", str(DEPLOY / "docker-compose.yml"), "config"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    networks = {name: set(service.get("networks", ())) for name, service in services.items()}
    assert networks["transmitter"] == {"transmitter_side"} and networks["receiver"] == {"receiver_side"}
    assert networks["channel"] == {"transmitter_side", "receiver_side"}  # the only way between them
    assert services["certs"]["command"][0] == "certs" and services["certs"]["network_mode"] == "none"
    for name in ("transmitter", "channel", "receiver"):
        assert services[name]["healthcheck"]["test"][:3] == ["CMD", "semcom", "health"]
        assert services[name]["restart"] == "unless-stopped" and services[name]["shm_size"]
        environment = services[name]["environment"]  # mutual TLS, with the certs service's files
        assert environment["SEMCOM_TLS_CERT"] == f"/certs/{name}.pem" and environment["SEMCOM_TLS_CA"] == "/certs/ca.pem"
    assert services["load"]["command"][0] == "load"


def test_grafana_provisioning_uses_the_fixed_datasource_uid():
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["uid"] == "semcom-prometheus"
    dashboard = json.loads((DEPLOY / "grafana/dashboards/semcom.json").read_text())
    uids = {target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel["targets"]}
    assert uids == {"semcom-prometheus"}


def test_the_dashboard_json_is_generated_from_make_dashboard():
    committed = (DEPLOY / "grafana" / "dashboards" / "semcom.json").read_text()
    assert committed == dashboard_module().render(), "run python deploy/grafana/make_dashboard.py"
    configmap = (DEPLOY / "kubernetes" / "base" / "grafana-dashboard.yaml").read_text()
    assert configmap == dashboard_module().render_configmap(), "run python deploy/grafana/make_dashboard.py"


# --- a real Prometheus on the services -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(services, tmp_path_factory):
    """Debian's Prometheus with the deploy scrape config, its targets pointed at the test's services."""
    binary = require("prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = config["global"]["evaluation_interval"] = "1s"
    ports = {"transmitter": services.transmitter.metrics_port, "channel": services.channel.metrics_port,
             "receiver": services.receiver.metrics_port}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen([binary, f"--config.file={folder / 'prometheus.yml'}",
                                f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=open(folder / "log", "w"))
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: urllib.request.urlopen(f"{url}/-/ready", timeout=1).status == 200, 30, "Prometheus ready")
        yield url
    finally:
        process.terminate()
        process.wait(20)


def query(url: str, expression: str) -> dict:
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expression}),
                                timeout=5) as response:
        return json.loads(response.read())


def _wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {seconds} s")
        time.sleep(0.2)


def test_prometheus_scrapes_psnr_and_latency_after_traffic(prometheus, transmitter):
    def series(expression):
        return query(prometheus, expression)["data"]["result"]

    def send(count):
        for _ in range(count):
            transmitter.Transmit(transmitter_pb2.TransmitRequest(image=sample_png()), timeout=30)

    send(1)  # the series appear; rate() then needs scrapes on both sides of more traffic
    _wait_for(lambda: series("semcom_transmitter_psnr_decibels_count"), 30, "PSNR series in Prometheus")
    send(3)

    def value(expression) -> float:
        result = series(expression)
        return float(result[0]["value"][1]) if result else math.nan

    latency_p50 = "histogram_quantile(0.5, sum by (le) (rate(semcom_transmitter_end_to_end_seconds_bucket[1m])))"
    _wait_for(lambda: 0 < value(latency_p50) < 10, 30, "end-to-end latency p50")
    mean_psnr = "sum(rate(semcom_transmitter_psnr_decibels_sum[1m])) / sum(rate(semcom_transmitter_psnr_decibels_count[1m]))"
    assert 10 < value(mean_psnr) < 60
    up = {s["metric"]["job"]: s["value"][1] for s in series("up")}
    assert up == {"transmitter": "1", "channel": "1", "receiver": "1"}


SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",),
                   "info": ("_info",), "summary": ("_sum", "_count", "")}


def exported_sample_names(services) -> set[str]:
    """Every sample name the services declare (a labelled metric is declared before its first sample)."""
    names = set()
    for server in (services.transmitter, services.channel, services.receiver):
        with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5) as response:
            for family in text_string_to_metric_families(response.read().decode()):
                names |= {family.name + suffix for suffix in SAMPLE_SUFFIXES.get(family.type, ("",))}
    return names


def test_every_dashboard_expression_evaluates_and_uses_exported_metrics(prometheus, services):
    exported = exported_sample_names(services)
    for expression in dashboard_expressions():
        result = query(prometheus, expression)
        assert result["status"] == "success", (expression, result)
        for name in re.findall(r"\b((?:semcom|grpc_server)_[a-z0-9_]+)", expression):
            assert name in exported, f"{name} in the dashboard is not exported by any service"


def test_promtool_passes_every_services_metrics(services):
    promtool = require("promtool")
    for server in (services.transmitter, services.channel, services.receiver):
        with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5) as response:
            text = response.read()
        result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30)
        assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


# --- load client and health probe -------------------------------------------------------------------------------


def test_load_reports_throughput_latency_and_errors(services):
    report = run_load(services.address(services.transmitter), [sample_png(), b"not an image"], concurrency=4,
                      duration=2.0, max_requests=40, progress=False)
    assert report.requests == 40
    assert len(report.latencies) == 20 and report.errors == {"INVALID_ARGUMENT": 20}  # every other image is junk
    text = report.render()
    assert "requests: 40" in text and "p99" in text and "INVALID_ARGUMENT 20" in text


def test_load_is_bounded_by_rate_and_duration(services):
    start = time.monotonic()
    report = run_load(services.address(services.transmitter), [sample_png()], concurrency=4, duration=1.5, rate=10,
                      max_requests=1000, progress=False)
    assert time.monotonic() - start < 3.0
    assert 12 <= report.requests <= 16  # 10/s for 1.5 s


@pytest.mark.parametrize("address,allowed", [("127.0.0.1:1", True), ("localhost:1", True), ("[::1]:1", True),
                                              ("10.1.2.3:50051", False), ("8.8.8.8:53", False)])
def test_load_only_targets_loopback_or_names(address, allowed):
    if allowed:
        check_target(address)
    else:
        with pytest.raises(ValueError, match="only sent to loopback"):
            check_target(address)


def test_health_probe_exits_zero_only_when_serving(services):
    ok = subprocess.run([*SEMCOM, "health", services.address(services.receiver)], capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0 and ok.stdout.strip() == "SERVING"
    down = subprocess.run([*SEMCOM, "health", f"127.0.0.1:{free_port()}", "--timeout", "1"], capture_output=True,
                          text=True, timeout=60)
    assert down.returncode == 1 and "UNAVAILABLE" in down.stderr

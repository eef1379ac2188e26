"""The three services on three hosts: Linux network namespaces joined by veth
pairs, each service with its own address. The channel node is the only one
on both links, so traffic between transmitter and receiver must cross it.
Clients run inside the transmitter's namespace. Skips with the reason where
the machine does not permit namespaces."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from semcom.common.data import sample_images
from semcom.tools.certs import make_certificates

pytestmark = pytest.mark.process  # three hosts (network namespaces), one service process each

PREFIX = f"sc{os.getpid() % 100000}"
NAMESPACES = {"tx": f"{PREFIX}tx", "ch": f"{PREFIX}ch", "rx": f"{PREFIX}rx"}
TX_ADDRESS, CH_TX_ADDRESS = "10.231.1.2", "10.231.1.1"  # the transmitter's link
CH_RX_ADDRESS, RX_ADDRESS = "10.231.2.1", "10.231.2.2"  # the receiver's link
SEMCOM = [sys.executable, "-m", "semcom.tools.cli"]


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=30)


def in_namespace(host: str, *command: str) -> list[str]:
    return ["ip", "netns", "exec", NAMESPACES[host], *command]


@pytest.fixture(scope="module")
def hosts():
    try:
        sh("ip", "netns", "add", NAMESPACES["tx"])
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or error
        pytest.skip(reason=f"network namespaces are not permitted here ({str(detail).strip()})")
    try:
        for name in ("ch", "rx"):
            sh("ip", "netns", "add", NAMESPACES[name])
        for (left, left_address), (right, right_address), link in (
            (("tx", TX_ADDRESS), ("ch", CH_TX_ADDRESS), "1"), (("ch", CH_RX_ADDRESS), ("rx", RX_ADDRESS), "2"),
        ):
            a, b = f"{PREFIX}{left}{link}", f"{PREFIX}{right}{link}"
            sh("ip", "link", "add", a, "netns", NAMESPACES[left], "type", "veth", "peer", "name", b,
               "netns", NAMESPACES[right])
            for host, interface, address in ((left, a, left_address), (right, b, right_address)):
                sh(*in_namespace(host, "ip", "addr", "add", f"{address}/24", "dev", interface))
                sh(*in_namespace(host, "ip", "link", "set", interface, "up"))
        for host in NAMESPACES:
            sh(*in_namespace(host, "ip", "link", "set", "lo", "up"))
        yield
    finally:
        for namespace in NAMESPACES.values():
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)


class Service:
    def __init__(self, host: str, name: str, address: str, port: int, extra: tuple[str, ...], folder: Path):
        self.host, self.name, self.address, self.port, self.extra, self.folder = host, name, address, port, extra, folder
        self.process: subprocess.Popen | None = None

    def start(self) -> Service:
        ready = self.folder / f"{self.name}.ready"
        ready.unlink(missing_ok=True)
        command = in_namespace(self.host, *SEMCOM, "serve", self.name, "--host", self.address, "--port",
                               str(self.port), "--metrics-port", "0", "--grace-seconds", "1",
                               "--ready-file", str(ready), *self.extra)
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=open(self.folder / f"{self.name}.log", "a"))
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert self.process.poll() is None, (self.folder / f"{self.name}.log").read_text()
            assert time.monotonic() < deadline, f"{self.name} not ready in 60 s"
            time.sleep(0.1)
        assert json.loads(ready.read_text())["port"] == self.port
        return self

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


CERTS: Path | None = None  # made by the chain fixture: every hop, and the clients, over mutual TLS


def tls(name: str) -> tuple[str, ...]:
    return ("--tls-cert", str(CERTS / f"{name}.pem"), "--tls-key", str(CERTS / f"{name}-key.pem"),
            "--tls-ca", str(CERTS / "ca.pem"))


@pytest.fixture(scope="module")
def chain(hosts, tmp_path_factory):
    global CERTS
    folder = tmp_path_factory.mktemp("multihost")
    CERTS = folder / "certs"
    make_certificates(CERTS, hosts=(TX_ADDRESS, CH_TX_ADDRESS, CH_RX_ADDRESS, RX_ADDRESS))
    services = {
        "receiver": Service("rx", "receiver", RX_ADDRESS, 50053, tls("receiver"), folder),
        "channel": Service("ch", "channel", "0.0.0.0", 50052,
                           ("--receiver", f"{RX_ADDRESS}:50053", "--seed", "1", *tls("channel")), folder),
        "transmitter": Service("tx", "transmitter", TX_ADDRESS, 50051,
                               ("--channel", f"{CH_TX_ADDRESS}:50052", *tls("transmitter")), folder),
    }
    for service in services.values():
        service.start()
    yield services
    for service in services.values():
        if service.process.poll() is None:
            service.stop()


def client(*args: str, timeout: float = 60, secure: bool = True) -> subprocess.CompletedProcess:
    """A semcom command run on the transmitter's host, with the client certificate (secure) or without."""
    return subprocess.run(in_namespace("tx", *SEMCOM, *(tls("client") if secure else ()), *args),
                          capture_output=True, text=True, timeout=timeout)


def send_sample(out: Path) -> subprocess.CompletedProcess:
    return client("send", str(sample_images()[0]), "--transmitter", f"{TX_ADDRESS}:50051", "--out", str(out),
                  "--timeout", "10")


def test_images_cross_the_hosts_through_the_channel_node(chain, tmp_path):
    sent = send_sample(tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert "scene_0" in sent.stdout and (tmp_path / "scene_0.png").is_file()
    plaintext = client("health", f"{TX_ADDRESS}:50051", "--timeout", "3", secure=False)
    assert plaintext.returncode == 1 and "UNAVAILABLE" in plaintext.stderr  # every service requires mTLS


def test_the_receiver_is_unreachable_from_the_transmitter_host(chain):
    direct = client("health", f"{RX_ADDRESS}:50053", "--timeout", "2")
    assert direct.returncode == 1 and "UNAVAILABLE" in direct.stderr
    via_channel_host = client("health", f"{CH_TX_ADDRESS}:50052", "--timeout", "5")
    assert via_channel_host.returncode == 0


def test_a_stopped_channel_node_gives_unavailable_quickly_and_its_restart_recovers(chain, tmp_path):
    others = {name: chain[name].process.pid for name in ("transmitter", "receiver")}
    assert chain["channel"].stop() == 0
    start = time.monotonic()
    down = send_sample(tmp_path)
    assert down.returncode == 1 and "UNAVAILABLE" in down.stderr and f"channel emulator at {CH_TX_ADDRESS}" in down.stderr
    assert time.monotonic() - start < 8  # the CLI's own start-up included; no hang until the 10 s deadline

    chain["channel"].start()
    deadline = time.monotonic() + 15
    while (again := send_sample(tmp_path)).returncode != 0:
        assert time.monotonic() < deadline, again.stderr
    assert "scene_0" in again.stdout
    assert {name: chain[name].process.pid for name in others} == others  # nobody else was restarted
    assert all(chain[name].process.poll() is None for name in others)

"""The services on separate hosts: Linux network namespaces joined by veth
pairs, each service with its own address, every hop over mutual TLS.

The chain: transmitter, channel and receiver on three hosts. The channel node
is the only one on both links, so traffic between transmitter and receiver
must cross it; clients run inside the transmitter's namespace.

The pool: one channel node (with a transmitter and the load client on its
loopback) and three receiver nodes, each on its own link, found through one
DNS name that resolves to all three (a headless Service's way); under load, one
receiver is killed and later restarted: no frame is lost, the live receivers
share the load, the restarted one rejoins.

Skips with the reason where the machine does not permit namespaces."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import answered_by, failed_calls, parse_metrics
from semcom.common.data import sample_images
from semcom.tools.certs import make_certificates

pytestmark = pytest.mark.process  # three hosts (network namespaces), one service process each

PREFIX = f"sc{os.getpid() % 100000}"
NAMESPACES = {"tx": f"{PREFIX}tx", "ch": f"{PREFIX}ch", "rx": f"{PREFIX}rx",  # the chain
              "pool": f"{PREFIX}pl", "r1": f"{PREFIX}r1", "r2": f"{PREFIX}r2", "r3": f"{PREFIX}r3"}  # the pool
TX_ADDRESS, CH_TX_ADDRESS = "10.231.1.2", "10.231.1.1"  # the transmitter's link
CH_RX_ADDRESS, RX_ADDRESS = "10.231.2.1", "10.231.2.2"  # the receiver's link
POOL_RECEIVERS = {f"r{i}": (f"10.232.{i}.1", f"10.232.{i}.2") for i in (1, 2, 3)}  # (channel side, receiver)
SEMCOM = [sys.executable, "-m", "semcom.tools.cli"]


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=30)


def in_namespace(host: str, *command: str) -> list[str]:
    return ["ip", "netns", "exec", NAMESPACES[host], *command]


@contextlib.contextmanager
def network(hosts: tuple[str, ...], links: list[tuple[tuple[str, str], tuple[str, str]]],
            names: dict[str, dict[str, list[str]]] | None = None):
    """Namespaces `hosts`, a veth pair per link ((host, address), (host, address)) in a /24; removed after.
    names: {host: {name: addresses}}, that host's /etc/hosts (`ip netns exec` mounts /etc/netns/NS/hosts)."""
    try:
        sh("ip", "netns", "add", NAMESPACES[hosts[0]])
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or error
        pytest.skip(reason=f"network namespaces are not permitted here ({str(detail).strip()})")
    try:
        for name in hosts[1:]:
            sh("ip", "netns", "add", NAMESPACES[name])
        for number, ((left, left_address), (right, right_address)) in enumerate(links, 1):
            a, b = f"{PREFIX}{left}{number}", f"{PREFIX}{right}{number}"
            sh("ip", "link", "add", a, "netns", NAMESPACES[left], "type", "veth", "peer", "name", b,
               "netns", NAMESPACES[right])
            for host, interface, address in ((left, a, left_address), (right, b, right_address)):
                sh(*in_namespace(host, "ip", "addr", "add", f"{address}/24", "dev", interface))
                sh(*in_namespace(host, "ip", "link", "set", interface, "up"))
        for host in hosts:
            sh(*in_namespace(host, "ip", "link", "set", "lo", "up"))
        for host, table in (names or {}).items():
            folder = Path("/etc/netns") / NAMESPACES[host]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "hosts").write_text("127.0.0.1 localhost\n" + "".join(
                f"{address} {name}\n" for name, addresses in table.items() for address in addresses))
        yield
    finally:
        for host in hosts:
            subprocess.run(["ip", "netns", "del", NAMESPACES[host]], capture_output=True, timeout=30)
            shutil.rmtree(Path("/etc/netns") / NAMESPACES[host], ignore_errors=True)


@pytest.fixture(scope="module")
def hosts():
    with network(("tx", "ch", "rx"), [(("tx", TX_ADDRESS), ("ch", CH_TX_ADDRESS)),
                                      (("ch", CH_RX_ADDRESS), ("rx", RX_ADDRESS))]):
        yield


class Service:
    def __init__(self, host: str, name: str, address: str, port: int, extra: tuple[str, ...], folder: Path,
                 label: str = ""):
        self.host, self.name, self.address, self.port, self.extra, self.folder = host, name, address, port, extra, folder
        self.label = label or name  # its files' names: several receivers share the service name
        self.process: subprocess.Popen | None = None
        self.ready: dict = {}

    def launch(self) -> Service:
        self._ready_file.unlink(missing_ok=True)
        command = in_namespace(self.host, *SEMCOM, "serve", self.name, "--host", self.address, "--port",
                               str(self.port), "--metrics-port", "0", "--grace-seconds", "1",
                               "--ready-file", str(self._ready_file), *self.extra)
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=open(self.folder / f"{self.label}.log", "a"))
        return self

    def wait_ready(self) -> Service:
        deadline = time.monotonic() + 60
        while not self._ready_file.exists():
            assert self.process.poll() is None, (self.folder / f"{self.label}.log").read_text()
            assert time.monotonic() < deadline, f"{self.label} not ready in 60 s"
            time.sleep(0.1)
        self.ready = json.loads(self._ready_file.read_text())
        assert self.ready["port"] == self.port
        return self

    def start(self) -> Service:
        return self.launch().wait_ready()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def metrics(self) -> dict[tuple[str, tuple], float]:
        """Its /metrics, read from inside its namespace, as {(sample name, sorted labels): value}."""
        url = f"http://127.0.0.1:{self.ready['metrics_port']}/metrics"
        text = subprocess.run(in_namespace(self.host, sys.executable, "-c",
                                           f"import urllib.request; print(urllib.request.urlopen({url!r}).read()"
                                           ".decode())"), capture_output=True, text=True, check=True, timeout=30).stdout
        return parse_metrics(text)

    @property
    def _ready_file(self) -> Path:
        return self.folder / f"{self.label}.ready"


CERTS: Path | None = None  # made by the certificates fixture: every hop, and the clients, over mutual TLS


def tls(name: str) -> tuple[str, ...]:
    return ("--tls-cert", str(CERTS / f"{name}.pem"), "--tls-key", str(CERTS / f"{name}-key.pem"),
            "--tls-ca", str(CERTS / "ca.pem"))


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    global CERTS
    CERTS = tmp_path_factory.mktemp("certs")
    make_certificates(CERTS, hosts=(TX_ADDRESS, CH_TX_ADDRESS, CH_RX_ADDRESS, RX_ADDRESS))


@pytest.fixture(scope="module")
def chain(hosts, certificates, tmp_path_factory):
    folder = tmp_path_factory.mktemp("multihost")
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


# --- the receiver pool --------------------------------------------------------------------------------------------

HOSTS_FILE = Path("/etc/netns") / NAMESPACES["pool"] / "hosts"  # the channel node's, as `ip netns exec` mounts it


@pytest.fixture(scope="module")
def pool(certificates, tmp_path_factory):
    """Three receiver nodes behind one channel node; the transmitter and the load client on the channel node.
    The channel finds the receivers as a Kubernetes headless Service gives them: one name, `receiver`, that
    resolves to every receiver's address (the channel node's /etc/hosts here, cluster DNS there). At first the
    name holds r1 and r2; a test adds r3, as a scale-out would. Receivers close connections after 2 s (instead
    of 30), so that the channel resolves the name again within the test."""
    links = [(("pool", channel_side), (name, address)) for name, (channel_side, address) in POOL_RECEIVERS.items()]
    with network(("pool", *POOL_RECEIVERS), links,
                 names={"pool": {"receiver": [POOL_RECEIVERS[name][1] for name in ("r1", "r2")]}}):
        folder = tmp_path_factory.mktemp("pool")
        receivers = {name: Service(name, "receiver", address, 50053, ("--node-name", name, "--max-connection-age-"
                                   "seconds", "2", *tls("receiver")), folder, label=name)
                     for name, (_, address) in POOL_RECEIVERS.items()}
        channel = Service("pool", "channel", "127.0.0.1", 50052,
                          ("--receiver", "receiver:50053", "--seed", "1", *tls("channel")), folder)
        transmitter = Service("pool", "transmitter", "127.0.0.1", 50051,
                              ("--channel", "127.0.0.1:50052", *tls("transmitter")), folder)
        for receiver in receivers.values():
            receiver.launch()  # the three load their models side by side
        for service in (*receivers.values(), channel.start(), transmitter.start()):
            service.wait_ready()
        yield receivers, channel
        for service in (transmitter, channel, *receivers.values()):
            if service.process.poll() is None:
                service.stop()


def decoded_by(channel: Service) -> dict[str, float]:
    """The channel's Decode calls answered OK, by receiver node."""
    return answered_by(channel.metrics())


def load(seconds: float, *pacing: str) -> subprocess.Popen:
    """`semcom load` of linear_analog frames (no scoring) from the channel node, started."""
    return subprocess.Popen(
        in_namespace("pool", *SEMCOM, *tls("client"), "load", "--transmitter", "127.0.0.1:50051", "--codec",
                     "linear_analog", "--duration", str(seconds), "--max-requests", "100000", "--scoring", "none",
                     "--omit-images", *(pacing or ("--concurrency", "6"))),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(running: subprocess.Popen) -> str:
    """The load's report, once it has finished without an error."""
    out, err = running.communicate(timeout=120)
    assert running.returncode == 0 and "errors: none" in out, out + err
    return out


def test_a_receiver_killed_under_load_loses_no_frame_and_rejoins_after_restart(pool):
    receivers, channel = pool
    running = load(15, "--concurrency", "4", "--rate", "12")
    time.sleep(3)
    receivers["r2"].process.kill()  # no drain, no goodbye: calls in flight to it fail and are retried elsewhere
    receivers["r2"].process.wait(10)
    at_kill = decoded_by(channel)  # after its death: a call it answered just before is counted already
    time.sleep(2)
    while_dead = decoded_by(channel)
    receivers["r2"].start()
    rejoined = decoded_by(channel)
    print(finished(running))  # the load report (pytest -s shows it)
    final = decoded_by(channel)

    assert failed_calls(channel.metrics(), "Forward") == 0  # the pool's retry, not the client's, kept every frame
    assert while_dead["r1"] > at_kill["r1"]  # the live receiver took the load
    assert while_dead.get("r2", 0) == at_kill.get("r2", 0)
    assert final.get("r2", 0) > rejoined.get("r2", 0)  # the restarted receiver is back in rotation
    assert final.get("r3", 0) == 0  # not in the name yet


def test_a_receiver_added_to_the_name_gets_frames_within_seconds(pool):
    receivers, channel = pool
    running = load(8, "--concurrency", "4", "--rate", "20")
    time.sleep(1)
    with HOSTS_FILE.open("a") as hosts:  # in place: the channel node's mount shows it at once
        hosts.write(f"{POOL_RECEIVERS['r3'][1]} receiver\n")
    added = time.monotonic()
    while not decoded_by(channel).get("r3"):
        assert time.monotonic() - added < 6, "r3 got no frame within 6 s of joining the name"
        time.sleep(0.2)
    print(f"\nr3 got its first frame {time.monotonic() - added:.1f} s after joining the name")
    finished(running)
    assert failed_calls(channel.metrics(), "Forward") == 0


def test_receivers_stopped_under_load_drain_and_one_receiver_serves_the_rest(pool):
    # Runs after the tests above (r1, r2, r3 all in the name). On 2 cores the three receivers share the CPUs with
    # everything else: this shows distribution and a clean scale-in, not a speed-up.
    receivers, channel = pool
    three = finished(load(3))
    running = load(5)
    time.sleep(1.5)
    stopped_at = time.monotonic()
    receivers["r2"].process.send_signal(signal.SIGTERM)  # health NOT_SERVING first, then the drain
    last_change, last = stopped_at, decoded_by(channel).get("r2", 0)
    while time.monotonic() - stopped_at < 3:
        if (now := decoded_by(channel).get("r2", 0)) != last:
            last_change, last = time.monotonic(), now
    finished(running)
    assert receivers["r2"].process.wait(30) == 0
    receivers["r3"].stop()
    before = decoded_by(channel)
    one = finished(load(3))
    after = decoded_by(channel)
    print(f"\nthree receivers: {three}\nleft rotation {last_change - stopped_at:.2f} s after SIGTERM (scrape "
          f"resolution about 0.1 s)\none receiver: {one}")
    assert last_change - stopped_at < 1.5  # out of rotation within about a second (scrapes included)
    assert after["r1"] - before["r1"] == sum(after.values()) - sum(before.values())  # r1 alone served them
    assert failed_calls(channel.metrics(), "Forward") == 0

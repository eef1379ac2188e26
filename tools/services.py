"""Running the three services: in this process (one event loop) or as separate
processes (`semcom serve ...`), for the demo, the benchmark and the tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import uvloop

from semcom.channel_emulator import server as channel_server
from semcom.common.serving.errors import ServiceError
from semcom.common.serving.server import ServiceServer, configure_logging, run_until_signal
from semcom.receiver import server as receiver_server
from semcom.transmitter import server as transmitter_server

SERVICES = {"transmitter": transmitter_server, "channel": channel_server, "receiver": receiver_server}


def serve(service: str, args) -> int:
    """`semcom serve SERVICE`: runs one service until SIGTERM/SIGINT."""
    configure_logging()
    module = SERVICES[service]
    settings, extra = module.settings_from(args)

    async def main() -> None:
        server: ServiceServer = await module.start(settings, **extra)
        await run_until_signal(server)

    try:
        uvloop.run(main())
    except (ServiceError, ValueError, OSError) as error:  # bad configuration or port: say so, no traceback
        print(f"semcom serve {service}: {error}", file=sys.stderr)
        return 2
    return 0


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen
    address: str
    metrics_port: int
    log_path: Path


@dataclass
class ServiceProcesses:
    """The three services as child processes on loopback, stopped with SIGTERM."""

    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def transmitter(self) -> str:
        return self.processes["transmitter"].address

    @property
    def channel(self) -> str:
        return self.processes["channel"].address

    def stop(self, timeout: float = 15.0) -> dict[str, int]:
        """SIGTERM to all, wait; returns each exit code (kills those that hang)."""
        for service in self.processes.values():
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        codes = {}
        for name, service in self.processes.items():
            try:
                codes[name] = service.process.wait(timeout)
            except subprocess.TimeoutExpired:
                service.process.kill()
                codes[name] = service.process.wait()
        return codes

    def __enter__(self) -> ServiceProcesses:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_processes(log_dir: Path, channel_args: tuple[str, ...] = (), timeout: float = 60.0,
                    receiver_args: tuple[str, ...] = (), transmitter_args: tuple[str, ...] = ()) -> ServiceProcesses:
    """Starts receiver, channel emulator and transmitter (in that order) on free loopback ports."""
    log_dir.mkdir(parents=True, exist_ok=True)
    group = ServiceProcesses()
    try:
        receiver = group.processes["receiver"] = start_service("receiver", receiver_args, log_dir, timeout)
        channel = group.processes["channel"] = start_service(
            "channel", ("--receiver", receiver.address, *channel_args), log_dir, timeout
        )
        group.processes["transmitter"] = start_service("transmitter", ("--channel", channel.address, *transmitter_args),
                                                        log_dir, timeout)
    except BaseException:
        group.stop()
        raise
    return group


def start_service(name: str, extra: tuple[str, ...], log_dir: Path, timeout: float = 60.0) -> ServiceProcess:
    """`semcom serve NAME --port 0 ... EXTRA` as a child process; returns once it is serving."""
    ready_file = Path(tempfile.mkdtemp(prefix=f"semcom-{name}-")) / "ready.json"
    log_path = log_dir / f"{name}.log"
    command = [sys.executable, "-m", "semcom.tools.cli", "serve", name, "--port", "0", "--metrics-port", "0",
               "--ready-file", str(ready_file), *extra]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    deadline = time.monotonic() + timeout
    while not ready_file.exists():
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}; see {log_path}:\n{log_path.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError(f"{name} not ready after {timeout:.0f} s; see {log_path}")
        time.sleep(0.05)
    ready = json.loads(ready_file.read_text())
    return ServiceProcess(name, process, f"127.0.0.1:{ready['port']}", ready["metrics_port"], log_path)

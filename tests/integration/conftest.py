"""Integration fixtures: the real Apache Kafka broker (deploy/kafka/local-kafka) and real worker processes.

Each test gets its own topic prefix and consumer group, so tests never see each other's messages. Every wait
is bounded. Set INTERCEPTOR_TEST_BROKER=host:port to use a broker you already run instead of starting one.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.kafka_io import wait_for

ROOT = Path(__file__).resolve().parents[2]
LOCAL_KAFKA = ROOT / "deploy" / "kafka" / "local-kafka"


# Ports for servers the tests start come from below the kernel's ephemeral range (32768 and up here): a port
# picked there can be taken by some client connection before the server binds it.
_PORTS = range(20_000, 32_000)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    for _ in range(200):
        port = random.choice(_PORTS)
        if _bindable(port):
            return port
    raise RuntimeError("no free port found")


def _free_port_pair() -> int:
    """A port p such that p and p+1 are free (broker and controller listeners)."""
    for _ in range(200):
        port = random.choice(_PORTS)
        if _bindable(port) and _bindable(port + 1):
            return port
    raise RuntimeError("no free pair of ports found")


@dataclass
class Broker:
    bootstrap: str
    env: dict[str, str] = field(default_factory=dict)

    def run(self, command: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(LOCAL_KAFKA), command],
            env={**os.environ, **self.env, **extra_env},
            capture_output=True,
            text=True,
            timeout=180,
        )
        if result.returncode != 0:
            raise RuntimeError(f"local-kafka {command} failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return result


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    external = os.environ.get("INTERCEPTOR_TEST_BROKER")
    if external:
        yield Broker(external)
        return
    for attempt in range(2):  # a free port can be taken between choosing it and the broker binding it
        port = _free_port_pair()
        env = {"KAFKA_PORT": str(port), "KAFKA_DATA_DIR": str(tmp_path_factory.mktemp("kafka"))}
        b = Broker(f"127.0.0.1:{port}", env)
        try:
            b.bootstrap = b.run("start").stdout.strip().splitlines()[-1]
            break
        except RuntimeError:
            b.run("stop")
            if attempt:
                raise
    try:
        yield b
    finally:
        b.run("stop")


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class Deployment:
    """One test's world: a topic prefix and consumer group of its own on the shared broker."""

    broker: Broker
    prefix: str
    app_id: str
    tmp: Path
    workers: list[Worker] = field(default_factory=list)

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def worker_env(self, **overrides: str) -> dict[str, str]:
        return {
            **os.environ,
            "NUMBA_NUM_THREADS": "1",
            "INTERCEPTOR_BROKER": self.broker.bootstrap,
            "INTERCEPTOR_TOPIC_PREFIX": self.prefix,
            "INTERCEPTOR_APP_ID": self.app_id,
            "INTERCEPTOR_PARTITIONS": "4",
            "INTERCEPTOR_METRICS_PORT": "0",
            "INTERCEPTOR_DATA_DIR": str(self.tmp / "data"),
            **overrides,
        }

    def start_worker(self, ready_timeout: float = 90, **overrides: str) -> Worker:
        n = len(self.workers)
        log_path = self.tmp / f"worker-{n}.log"
        env = self.worker_env(**overrides)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli.main", "worker"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(process, log_path, env)
        self.workers.append(worker)
        # Faust prints "Ready" once the agent has its partitions and is consuming.
        wait_for(
            lambda: "Ready" in worker.log() or process.poll() is not None,
            ready_timeout,
            f"worker {n} ready",
        )
        if process.poll() is not None:
            raise AssertionError(f"worker {n} exited with {process.returncode}:\n{worker.log()[-4000:]}")
        return worker


@pytest.fixture
def deployment(broker: Broker, tmp_path: Path) -> Iterator[Deployment]:
    tag = uuid.uuid4().hex[:8]
    d = Deployment(broker, prefix=f"t{tag}.", app_id=f"interceptor-test-{tag}", tmp=tmp_path)
    try:
        yield d
    finally:
        for w in d.workers:
            w.stop()

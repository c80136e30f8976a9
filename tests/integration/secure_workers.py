"""What the SASL and TLS tests share: a worker given only a secured listener, fed and read through the broker's
plain one; a worker that must stop by itself, watched up to a bound; the command line run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson

from tests.integration.conftest import ROOT, Broker, Deployment, Worker, free_port
from tests.integration.kafka_io import produce, read_topic

USER = "svc-fraud"  # the SASL user of the tests' brokers


def distinct_free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def secure_deployment(listener: str, kind: str, tmp: Path) -> Deployment:
    """A deployment (own topic prefix and consumer group) whose workers get only `listener`."""
    tag = uuid.uuid4().hex[:8]
    return Deployment(Broker(listener), prefix=f"{kind[0]}{tag}.", app_id=f"interceptor-{kind}-{tag}", tmp=tmp)


def transactions(n: int, tag: str) -> list[dict]:
    return [
        {
            "txn_id": f"{tag}-{i}",
            "ts": 1_772_325_000_000 + i * 1000,
            "payer_account": f"P{i % 23}",
            "payee_account": f"Q{i % 7}",
            "amount": f"{100 + i}.00",
            "channel": "mobile",
        }
        for i in range(n)
    ]


def assert_worker_decides(deployment: Deployment, plaintext: str, env: dict[str, str], n: int = 200) -> Worker:
    """Start a worker with `env` (it creates the topics itself, through its listener), feed it n transactions
    through the plain listener `plaintext`, and check that every one is decided; returns the stopped worker."""
    feed = transactions(n, deployment.prefix)
    try:
        worker = deployment.start_worker(**env)
        produce(
            plaintext,
            deployment.topic("transactions"),
            ((t["payer_account"].encode(), orjson.dumps(t)) for t in feed),
        )
        decided = read_topic(plaintext, deployment.topic("decisions"), len(feed), timeout=120)
    finally:
        for w in deployment.workers:
            w.stop()
    assert sorted(d.json()["txn_id"] for d in decided) == sorted(t["txn_id"] for t in feed)
    return worker


@dataclass(frozen=True)
class WorkerExit:
    returncode: int | None  # None: still running at the bound (then killed)
    seconds: float
    log: str


def run_until_exit(deployment: Deployment, bound_s: float, env: dict[str, str]) -> WorkerExit:
    """A worker that should stop by itself (refused by the broker), left alone until it exits or the bound
    passes."""
    started = time.monotonic()
    worker = deployment.spawn_worker(**env)
    try:
        returncode: int | None = worker.process.wait(bound_s)
    except subprocess.TimeoutExpired:
        returncode = None
        worker.process.kill()
        worker.process.wait(10)
    return WorkerExit(returncode, time.monotonic() - started, worker.log())


def assert_stopped_refused(run: WorkerExit, bound_s: float, why: str) -> str:
    """The worker stopped by itself, with an error exit and without getting ready; returns its last words."""
    assert run.returncode is not None, f"the worker was still running {bound_s}s after {why}:\n{run.log[-3000:]}"
    assert run.returncode != 0, f"the worker exited with 0 though it never connected:\n{run.log[-3000:]}"
    assert "Ready" not in run.log
    return run.log[-3000:]


def interceptor(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run `interceptor ARGS` with `env` over the environment; the caller checks the outcome."""
    return subprocess.run(
        [sys.executable, "-m", "streams.cli.main", *args],
        cwd=ROOT,
        env={**os.environ, "NUMBA_NUM_THREADS": "1", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def interceptor_ok(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = interceptor(env, *args)
    assert result.returncode == 0, f"interceptor {' '.join(args)} exited with {result.returncode}:\n{result.stderr}"
    return result


def assert_refused_at_once(result: subprocess.CompletedProcess[str], *messages: str) -> None:
    """A command refused by the brokers: exit 1, the worker's clear message naming the cause, no traceback."""
    shown = f"exit {result.returncode}\nstdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert result.returncode == 1, shown
    assert "Traceback" not in result.stderr, shown
    assert "Error: cannot use the Kafka brokers: " in result.stderr, shown
    for message in messages:
        assert message in result.stderr, shown


def tls_env(cafile: Path | str, protocol: str = "SSL", password: str = "") -> dict[str, str]:
    env = {"INTERCEPTOR_SECURITY_PROTOCOL": protocol, "INTERCEPTOR_SSL_CAFILE": str(cafile)}
    if protocol == "SASL_SSL":
        env |= {
            "INTERCEPTOR_SASL_MECHANISM": "PLAIN",
            "INTERCEPTOR_SASL_USERNAME": USER,
            "INTERCEPTOR_SASL_PASSWORD": password,
        }
    return env

"""The worker's probe endpoints (streams/health.py), as Kubernetes and Docker see them over HTTP."""

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from streams.health import Health, serve


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


now = [0.0]  # the fake clock the probe reads


@pytest.fixture
def served() -> Iterator[tuple[int, Health]]:
    registry = CollectorRegistry()
    Counter("interceptor_decisions", "decisions", registry=registry).inc(3)
    health = Health(stall_s=60, clock=lambda: now[0])
    server = serve(0, registry, health, addr="127.0.0.1")  # port 0: any free one
    try:
        yield server.server_port, health
    finally:
        server.shutdown()
        server.server_close()


def test_ready_only_once_the_worker_decides(served: tuple[int, Health]) -> None:
    port, health = served
    assert get(port, "/readyz")[0] == 503
    health.ready = True
    assert get(port, "/readyz") == (200, "ready\n")
    health.ready = False  # stopping
    assert get(port, "/readyz")[0] == 503


def test_live_while_the_event_loop_beats(served: tuple[int, Health]) -> None:
    port, health = served
    assert get(port, "/healthz") == (200, "starting\n")  # no beat yet: loading is slow, not stuck
    health.beat()
    assert get(port, "/healthz") == (200, "ok\n")
    now[0] += 59
    assert get(port, "/healthz")[0] == 200
    now[0] += 2  # 61 s without a beat: longer than stall_s
    status, body = get(port, "/healthz")
    assert status == 503 and "event loop stalled: no heartbeat for 61s" in body
    health.beat()
    assert get(port, "/healthz")[0] == 200


def test_metrics_are_still_served(served: tuple[int, Health]) -> None:
    port, _ = served
    status, body = get(port, "/metrics")
    assert status == 200 and "interceptor_decisions_total 3.0" in body

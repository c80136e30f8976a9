"""The worker's HTTP endpoints on the metrics port: `/metrics` for Prometheus, `/healthz` and `/readyz` for
Kubernetes probes (deploy/k8s/worker.yaml).

- `/readyz` answers 200 once the worker decides transactions: its state restored or rebuilt, the calls and
  mule list caught up, the other workers' transactions read. Before that, and from the moment it stops, 503.
  A rolling restart waits for it, so that the next worker is not taken down while this one cannot decide yet.
- `/healthz` answers 503 once the event loop has not run its heartbeat for `stall_s` seconds (a stuck loop
  decides nothing and commits nothing), else 200. Before the loop's first beat it answers 200: Faust's start
  and the catch-up are slow, not stuck.

The server runs in its own threads, like prometheus-client's own, so a busy event loop does not delay a scrape
or a probe; the loop only writes two attributes, which the threads read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

READY_LOG = "ready: deciding transactions"  # the worker's log line when /readyz turns 200 (the bench waits for it)
STALL_S = 60.0  # a heartbeat this late means the event loop is stuck
BEAT_EVERY_S = 1.0


class Health:
    """What the probes report. The event loop calls `beat` every BEAT_EVERY_S and sets `ready`."""

    def __init__(self, stall_s: float = STALL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_s = stall_s
        self.clock = clock
        self.ready = False
        self.last_beat: float | None = None  # `clock()` at the loop's latest heartbeat

    def beat(self) -> None:
        self.last_beat = self.clock()

    def live(self) -> tuple[bool, str]:
        if self.last_beat is None:
            return True, "starting"
        late = self.clock() - self.last_beat
        if late > self.stall_s:
            return False, f"event loop stalled: no heartbeat for {late:.0f}s"
        return True, "ok"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds would flood the log
        pass


def serve(port: int, registry: CollectorRegistry, health: Health, addr: str = "0.0.0.0") -> WSGIServer:
    """Serve the three endpoints on `port` from daemon threads; returns the server (`shutdown()` stops it)."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            ok, why = health.live()
        elif path == "/readyz":
            ok, why = health.ready, "ready" if health.ready else "not deciding yet (starting) or stopping"
        else:
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
        return [why.encode() + b"\n"]

    httpd = make_server(addr, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=httpd.serve_forever, name="http-endpoints", daemon=True).start()
    return httpd

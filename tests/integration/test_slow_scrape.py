"""A slow or absent metrics scraper never slows decisions: /metrics is served on its own threads."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from tests.integration.conftest import Deployment, free_port
from tests.integration.kafka_io import produce_json, read_topic

pytestmark = pytest.mark.integration

T = 1_772_330_400_000


def test_a_hung_scrape_does_not_stop_decisions_or_other_scrapes(deployment: Deployment) -> None:
    port = free_port()
    deployment.start_worker(INTERCEPTOR_METRICS_PORT=str(port))
    # three scrapers that connect, send half a request and never finish it
    hung = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        hung.append(s)
    try:
        txns = [{"txn_id": f"s{i}", "ts": T + i, "payer_account": f"p{i % 9}", "payee_account": "q", "amount": 10}
                for i in range(200)]  # fmt: skip
        produce_json(deployment.broker.bootstrap, deployment.topic("transactions"), txns, "payer_account")
        decided = read_topic(deployment.broker.bootstrap, deployment.topic("decisions"), 200, 120)
        assert len({r.json()["txn_id"] for r in decided}) == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        assert 'interceptor_decisions_total{action="allow",channel="unknown"} 200.0' in text
    finally:
        for s in hung:
            s.close()

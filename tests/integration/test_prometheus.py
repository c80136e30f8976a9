"""Debian's real Prometheus scrapes a real worker: every dashboard and recording-rule query returns data, and the
intercepted amount Prometheus reports equals the sum over the decisions topic."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import orjson
import pytest
import yaml

from streams.simulator import SimConfig, simulate
from tests.integration.conftest import ROOT, Deployment, free_port
from tests.integration.kafka_io import produce, read_topic, wait_for

pytestmark = pytest.mark.integration
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "interceptor.json"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "interceptor.rules.yml"


def query(port: int, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def numbers(port: int, expr: str) -> list[dict]:
    """The query's samples that are numbers: a ratio or a quantile of nothing is NaN, which a panel shows as
    such, and counts as no data here."""
    return [r for r in query(port, expr) if r["value"][1] != "NaN"]


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    groups = yaml.safe_load(RULES.read_text())["groups"]
    exprs += [r["expr"] for g in groups for r in g["rules"] if "record" in r]
    return exprs


@pytest.fixture
def prometheus(tmp_path: Path):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("Debian's prometheus is not installed; run scripts/bootstrap")
    port, worker_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {"job_name": "interceptor", "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]}
                ],
            }
        )
    )
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: _ready(port), 60, "prometheus ready")
        yield port, worker_port
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_every_panel_and_recording_rule_returns_data_and_totals_match_the_decisions(
    deployment: Deployment, prometheus
) -> None:
    prom_port, worker_port = prometheus
    feed = simulate(SimConfig(customers=1500, days=2, seed=21, fraud_rate=0.05))
    bootstrap = deployment.broker.bootstrap
    deployment.start_worker(INTERCEPTOR_METRICS_PORT=str(worker_port))
    # before any transaction a query gives a number or no value, never NaN
    scraped = 'sum_over_time(up{job="interceptor"}[1m]) >= 3'
    wait_for(lambda: bool(query(prom_port, scraped)), 30, "three scrapes of the worker")
    nan = [e for e in expressions() if len(numbers(prom_port, e)) < len(query(prom_port, e))]
    assert nan == [], f"queries that show NaN without traffic: {nan}"
    produce(bootstrap, deployment.topic("calls"), ((c["callee_phone"].encode(), orjson.dumps(c)) for c in feed.calls))
    time.sleep(2)
    messages = [(t["payer_account"].encode(), orjson.dumps(t)) for t in feed.transactions]
    messages += [(b"broken", b"{not json"), (b"broken", b'{"txn_id": "x"}')]
    produce(bootstrap, deployment.topic("transactions"), messages)
    decisions = [r.json() for r in read_topic(bootstrap, deployment.topic("decisions"), len(feed.transactions), 240)]
    decisions = [d for d in decisions if d["kind"] == "decision"]
    intercepted = sum(d["amount"] for d in decisions if d["action"] in ("hold", "block"))
    assert intercepted > 0
    # the bank calls the held customers (victims report the scam, the others confirm), then investigators label
    fraud = {x["txn_id"] for x in feed.labels if x.get("txn_id") and x["verdict"] == "fraud"}
    payers = {t["txn_id"]: t["payer_account"] for t in feed.transactions}
    answers = [
        {"verification_id": f"v-{d['txn_id']}", "txn_id": d["txn_id"], "payer_account": payers[d["txn_id"]],
         "outcome": "fraud_reported" if d["txn_id"] in fraud else "confirmed", "ts": int(time.time() * 1000)}
        for d in decisions if d["action"] == "hold"
    ]  # fmt: skip
    assert answers, "the feed should get some payments held"
    # in two waves, as feedback trickles in: a counter series born with its value between two scrapes shows no
    # increase, so feedback that all arrives at once would leave the 7-day rule precision without a value
    verifications = [(a["payer_account"].encode(), orjson.dumps(a)) for a in answers]
    produce(bootstrap, deployment.topic("verifications"), verifications[: len(verifications) // 2])
    wait_for(lambda: bool(query(prom_port, "interceptor_rule_feedback_total")), 60, "the first feedback scraped")
    produce(bootstrap, deployment.topic("verifications"), verifications[len(verifications) // 2 :])
    produce(bootstrap, deployment.topic("labels"), ((b"label", orjson.dumps(x)) for x in feed.labels))

    pending = expressions()

    def all_have_data() -> bool:
        pending[:] = [e for e in pending if not numbers(prom_port, e)]
        return not pending

    try:
        wait_for(all_have_data, 120, "every dashboard and recording-rule query to return data", interval=2)
    except AssertionError:
        raise AssertionError(f"queries without data (or only NaN): {pending}") from None

    def reported() -> float:
        result = query(prom_port, "sum(interceptor_intercepted_amount_total)")
        return float(result[0]["value"][1]) if result else -1.0

    wait_for(lambda: abs(reported() - intercepted) < 0.01, 30, f"Prometheus to report {intercepted:.2f}")
    dead = query(prom_port, 'sum(interceptor_dead_letters_total{reason=~"invalid_json|missing_field"})')
    assert float(dead[0]["value"][1]) == 2

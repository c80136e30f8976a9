"""Each feature family fires on a crafted sequence, through the real broker and a real worker process.

One worker serves the module: calls and labels are produced first, then the transactions; each test then
checks the decisions of its own accounts.
"""

from __future__ import annotations

import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Broker, Deployment, free_port
from tests.integration.kafka_io import produce_json, read_topic, wait_for

pytestmark = pytest.mark.integration

T = 1_772_330_400_000  # 2026-03-01T02:00:00Z = 10:00 in UTC+8
MIN = 60_000
DAY = 86_400_000

RULES = """
ruleset: {version: "families-1", thresholds: {review: 10, hold: 20, block: 30}}
rules:
  - {id: payer_velocity, description: d, score: 1, when: payer.txn_count_1h >= 2 and payer.amount_sum_1h >= 300}
  - {id: payer_spike, description: d, score: 1, when: payer.amount_ratio_to_mean >= 10}
  - {id: payer_new_device_night, description: d, score: 1, when: payer.new_device and night}
  - {id: payer_dormant, description: d, score: 1, when: payer.dormant_reactivated}
  - {id: payer_young, description: d, score: 1, when: payer.account_age_days < 7}
  - {id: new_payees, description: d, score: 1, when: payer.new_payees_24h >= 2}
  - {id: payee_fan_in, description: d, score: 1, when: payee.distinct_payers_1h >= 3}
  - {id: payee_fast_out, description: d, score: 1, when: payee.pass_through_30m >= 0.8}
  - {id: call_risky, description: d, score: 1, when: call.risky_within_30m and call.worst_risk_30m == 'virtual'}
  - {id: call_long, description: d, score: 1, when: call.active and call.duration_s >= 600}
  - {id: mule_listed, description: d, score: 30, when: payee.on_mule_list, action: block}
"""


def t(txn_id: str, ts: int, payer: str, payee: str, amount: float, **extra) -> dict:
    return {"txn_id": txn_id, "ts": ts, "payer_account": payer, "payee_account": payee, "amount": amount, **extra}


TRANSACTIONS = [
    *[t(f"vel{i}", T + i * MIN, "PV", f"QV{i % 2}", 200) for i in range(3)],
    t("spk0", T, "PS", "QS", 100),
    t("spk1", T + MIN, "PS", "QS", 100),
    t("spk2", T + 2 * MIN, "PS", "QS", 2000),
    # the worker's bank is in London (INTERCEPTOR_TIMEZONE below): 02:00 there, night, a first device; at the
    # default +08:00 it would be 10:00
    t("ngt0", T, "PN", "QN", 50, device_id="d1"),
    t("ngt1", T + 3_600_000, "PN", "QN", 50, device_id="d1"),  # same device again
    t("dor0", T - 40 * DAY, "PD", "QD", 50),
    t("dor1", T, "PD", "QD", 50),
    t("yng0", T, "PY", "QY", 50, payer_account_opened="2026-02-27"),
    t("nps0", T, "PP", "Q1", 50),
    t("nps1", T + MIN, "PP", "Q2", 50),
    t("nps2", T + 2 * MIN, "PP", "Q3", 50),
    *[t(f"fan{i}", T + i * MIN, f"F{i}", "MF", 100) for i in range(4)],
    t("fo0", T, "A", "MO", 10_000),
    t("fo1", T + 5 * MIN, "MO", "X", 9_000),
    t("fo2", T + 6 * MIN, "B", "MO", 500),
    t("cal0", T, "PC", "QC", 700, payer_phone="+8613900000007"),
    t("mul0", T, "PM", "MM", 50),
]
CALLS = [
    {"call_id": "c7", "callee_phone": "+8613900000007", "caller_number": "+17005550100",
     "started_at": T - 15 * MIN, "caller_risk": "virtual"},
]  # fmt: skip
LABELS = [{"account": "MM", "verdict": "fraud", "role": "mule"}]


@pytest.fixture(scope="module")
def world(broker: Broker, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("families")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    d = Deployment(broker, prefix=f"fam{int(time.time())}.", app_id=f"families-{time.time_ns()}", tmp=tmp)
    port = free_port()
    d.start_worker(
        INTERCEPTOR_RULES_PATH=str(rules),
        INTERCEPTOR_METRICS_PORT=str(port),
        INTERCEPTOR_RULES_POLL_S="0.5",
        INTERCEPTOR_TIMEZONE="Europe/London",
    )
    produce_json(broker.bootstrap, d.topic("calls"), CALLS, "callee_phone")
    produce_json(broker.bootstrap, d.topic("labels"), LABELS, "account")
    time.sleep(2)  # the worker follows calls and labels in the background; give them a moment
    # Transfers of different payers sit in different partitions, which Kafka does not order among each other;
    # in life they are minutes apart. Send each cross-account step after the previous one was decided.
    later = ["fan3", "fo1", "fo2"]
    steps = [[x for x in TRANSACTIONS if x["txn_id"] not in later]] + [
        [x for x in TRANSACTIONS if x["txn_id"] == i] for i in later
    ]
    sent = 0
    for step in steps:
        produce_json(broker.bootstrap, d.topic("transactions"), step, "payer_account")
        sent += len(step)
        decisions = read_topic(broker.bootstrap, d.topic("decisions"), sent, timeout=120)
    by_id = {r.json()["txn_id"]: r.json() for r in decisions}
    yield d, by_id, rules, port
    for w in d.workers:
        w.stop()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def fired(decisions: dict, txn_id: str) -> set[str]:
    return {r["rule"] for r in decisions[txn_id]["reasons"]}


def test_every_transaction_has_exactly_one_decision(world) -> None:
    _, decisions, _, _ = world
    assert sorted(decisions) == sorted(x["txn_id"] for x in TRANSACTIONS)


def test_payer_windows_and_history(world) -> None:
    _, d, _, _ = world
    assert [("payer_velocity" in fired(d, f"vel{i}")) for i in range(3)] == [False, False, True]
    assert [("payer_spike" in fired(d, f"spk{i}")) for i in range(3)] == [False, False, True]
    assert ["payer_dormant" in fired(d, x) for x in ("dor0", "dor1")] == [False, True]
    assert "payer_young" in fired(d, "yng0")


def test_new_device_at_night_and_new_payees(world) -> None:
    _, d, _, _ = world
    assert ["payer_new_device_night" in fired(d, x) for x in ("ngt0", "ngt1")] == [True, False]
    assert ["new_payees" in fired(d, f"nps{i}") for i in range(3)] == [False, False, True]


def test_payee_fan_in_and_fast_out(world) -> None:
    _, d, _, _ = world
    assert ["payee_fan_in" in fired(d, f"fan{i}") for i in range(4)] == [False, False, False, True]
    assert "payee_fast_out" in fired(d, "fo2")
    assert d["fo2"]["reasons"][0]["features"]["payee.pass_through_30m"] == pytest.approx(0.9)


def test_call_join(world) -> None:
    _, d, _, _ = world
    assert {"call_risky", "call_long"} <= fired(d, "cal0"), d["cal0"]
    reason = next(r for r in d["cal0"]["reasons"] if r["rule"] == "call_long")
    assert reason["features"] == {"call.active": True, "call.duration_s": 900.0}


def test_mule_list_from_labels(world) -> None:
    _, d, _, _ = world
    assert fired(d, "mul0") == {"mule_listed"}
    assert d["mul0"]["action"] == "block"


def test_metrics_count_decisions_and_rule_hits(world) -> None:
    _, _, _, port = world
    text = scrape(port)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    decided = sum(v for (name, _), v in samples.items() if name == "interceptor_decisions_total")
    assert decided == len(TRANSACTIONS)
    assert samples[("interceptor_rule_hits_total", (("mode", "active"), ("rule", "mule_listed")))] == 1


def test_hot_reload_swaps_a_valid_ruleset_and_keeps_it_when_broken(world, broker: Broker) -> None:
    d, _, rules, port = world
    rules.write_text(RULES.replace("families-1", "families-2"))
    time.sleep(2)
    rules.write_text("rules: [ {id: x, when: amont > 1} ]\n")  # broken: the running ruleset must stay
    time.sleep(2)
    produce_json(broker.bootstrap, d.topic("transactions"), [t("after", T, "PR", "QR", 1)], "payer_account")

    def decided_after() -> bool:
        return any(r.json()["txn_id"] == "after" for r in read_topic(broker.bootstrap, d.topic("decisions"), 1, 30))

    wait_for(decided_after, 60, "the decision of the transaction sent after the reload")
    after = next(
        r.json() for r in read_topic(broker.bootstrap, d.topic("decisions"), 1, 30) if r.json()["txn_id"] == "after"
    )
    assert after["ruleset"] == "families-2"
    text = scrape(port)
    assert 'interceptor_ruleset_reloads_total{result="success"} 1.0' in text
    assert 'interceptor_ruleset_reloads_total{result="failure"} 1.0' in text
    assert "rejected; keeping version families-2" in d.workers[0].log()

"""The interception lifecycle against the real broker: every way a hold closes, the repeat-transfer rule, the
fraud report that makes a mule candidate, and open holds surviving a kill -9 of the worker."""

from __future__ import annotations

import signal
import time

import orjson
import pytest

from tests.integration.conftest import Deployment
from tests.integration.kafka_io import produce, produce_json, read_topic

pytestmark = pytest.mark.integration

T = 1_772_330_400_000  # 2026-03-01T02:00:00Z
SEC = 1_000

RULES = """
ruleset:
  version: lifecycle-it-1
  thresholds: {review: 30, hold: 60, block: 100}
  holds: {minutes: 10, on_expiry: block}
rules:
  - {id: large_new_payee, description: d, score: 60, when: amount >= 10000 and payee.new_for_payer}
  - {id: quick_hold, description: d, score: 60, action: hold, hold_minutes: 0.05, when: amount == 7777}
  - id: new_payee_while_held
    description: d
    score: 60
    action: hold
    when: payer.open_holds > 0 and payee.new_for_payer
  - {id: payee_reported_by_victim, description: d, score: 60, action: hold, when: payee.mule_candidate}
"""


def t(txn_id: str, seconds: float, payer: str, payee: str, amount: float) -> dict:
    ts = T + int(seconds * SEC)
    return {"txn_id": txn_id, "ts": ts, "payer_account": payer, "payee_account": payee, "amount": amount}


def v(txn_id: str, payer: str, outcome: str) -> dict:
    return {"verification_id": f"v-{txn_id}", "txn_id": txn_id, "payer_account": payer, "outcome": outcome,
            "ts": T + 60 * SEC}  # fmt: skip


def kinds(deployment: Deployment, expect: int) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """First decisions by txn_id, and hold outcomes by txn_id (a list: a restart may repeat one)."""
    records = [r.json() for r in read_topic(deployment.broker.bootstrap, deployment.topic("decisions"), expect, 120)]
    first = {r["txn_id"]: r for r in records if r["kind"] == "decision"}
    outcomes: dict[str, list[dict]] = {}
    for r in records:
        if r["kind"] == "hold_outcome":
            outcomes.setdefault(r["txn_id"], []).append(r)
    return first, outcomes


def test_each_hold_outcome_and_the_repeat_rule_through_kafka(deployment: Deployment) -> None:
    rules = deployment.tmp / "rules.yaml"
    rules.write_text(RULES)
    env = {"INTERCEPTOR_RULES_PATH": str(rules), "INTERCEPTOR_CHECKPOINT_INTERVAL_S": "0.2"}
    worker = deployment.start_worker(**env)
    bootstrap = deployment.broker.bootstrap

    held = [
        t("conf", 0, "PA", "car-dealer", 20_000),
        t("frd", 0, "PB", "mule-1", 20_000),
        t("invr", 0, "PC", "school", 20_000),
        t("invb", 0, "PD", "crypto", 20_000),
        t("exp", 0, "PE", "someone", 7_777),
        t("rep1", 0, "PF", "safe-1", 20_000),
    ]
    produce_json(bootstrap, deployment.topic("transactions"), held, "payer_account")
    first, _ = kinds(deployment, len(held))
    assert {k: d["action"] for k, d in first.items()} == dict.fromkeys([x["txn_id"] for x in held], "hold")

    # the victim PF tries again, to another new payee, while the first transfer waits: held too
    produce_json(bootstrap, deployment.topic("transactions"), [t("rep2", 20, "PF", "safe-2", 900)], "payer_account")
    # the bank reaches four of the customers
    answers = [
        v("conf", "PA", "confirmed"),
        v("frd", "PB", "fraud_reported"),
        v("invr", "PC", "investigator_release"),
        v("invb", "PD", "investigator_block"),
    ]
    produce_json(bootstrap, deployment.topic("verifications"), answers, "payer_account")
    # 'exp' was held for 3 s (quick_hold's hold_minutes) and nobody answered: the ruleset says block
    first, outcomes = kinds(deployment, len(held) + 1 + 5)
    assert first["rep2"]["action"] == "hold"
    assert [r["rule"] for r in first["rep2"]["reasons"]] == ["new_payee_while_held"]
    closed = {k: (o[0]["action"], o[0]["cause"]) for k, o in outcomes.items()}
    assert closed == {
        "conf": ("release", "confirmed"),
        "frd": ("block", "fraud_reported"),
        "invr": ("release", "investigator"),
        "invb": ("block", "investigator"),
        "exp": ("block", "expired"),
    }

    # PB's report (and the investigator's block) made their payees candidates on every worker, through the
    # labels topic: another customer's transfer to mule-1 is held
    labels = [r.json() for r in read_topic(bootstrap, deployment.topic("labels"), 2, 60)]
    assert sorted((x["account"], x["verdict"], x["source"]) for x in labels) == [
        ("crypto", "suspected", "verification"),
        ("mule-1", "suspected", "verification"),
    ]
    produce_json(bootstrap, deployment.topic("transactions"), [t("after", 90, "PX", "mule-1", 800)], "payer_account")
    first, _ = kinds(deployment, len(held) + 2 + 5)
    assert first["after"]["action"] == "hold"
    assert [r["rule"] for r in first["after"]["reasons"]] == ["payee_reported_by_victim"]

    # a crash while rep1, rep2 and after are still held: the restarted worker still knows them
    time.sleep(1)  # let a checkpoint follow the last batch
    worker.stop(signal.SIGKILL)
    deployment.start_worker(**env)
    produce_json(bootstrap, deployment.topic("verifications"), [v("rep1", "PF", "confirmed")], "payer_account")
    produce_json(bootstrap, deployment.topic("verifications"), [v("after", "PX", "fraud_reported")], "payer_account")
    first, outcomes = kinds(deployment, len(held) + 2 + 7)
    assert outcomes["rep1"][-1]["action"] == "release" and outcomes["rep1"][-1]["cause"] == "confirmed"
    assert outcomes["after"][-1]["action"] == "block"
    assert "rep2" not in outcomes  # still waiting for its call
    # at-least-once: a repeated follow-up is identical, never a different outcome
    for txn_id, repeated in outcomes.items():
        assert len({(r["action"], r["cause"], r["decided_at"]) for r in repeated}) == 1, (txn_id, repeated)


def test_the_simulated_call_centre_answers_holds_live(deployment: Deployment) -> None:
    """`interceptor call-centre` answers the worker's holds on Kafka: victims report, honest customers confirm."""
    import subprocess
    import sys

    from streams.simulator import SimConfig, simulate
    from tests.integration.conftest import ROOT

    worker = deployment.start_worker()
    feed = simulate(SimConfig(customers=800, days=2, seed=8, fraud_rate=0.05))
    bootstrap = deployment.broker.bootstrap
    produce_json(bootstrap, deployment.topic("calls"), feed.calls, "callee_phone")
    labels = ((str(x.get("account") or x["txn_id"]).encode(), orjson.dumps(x)) for x in feed.labels)
    produce(bootstrap, deployment.topic("labels"), labels)
    time.sleep(2)
    produce_json(bootstrap, deployment.topic("transactions"), feed.transactions, "payer_account")
    first, _ = kinds(deployment, len(feed.transactions))
    held = {k for k, d in first.items() if d["action"] == "hold"}
    assert held, "the feed should get some payments held"

    centre = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "call-centre", "--speed", "600", "--idle-exit", "8"],
        cwd=ROOT, env=worker.env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert centre.returncode == 0, centre.stderr
    assert f"{len(held)} holds: " in centre.stderr
    fraud = {x["txn_id"] for x in feed.labels if x.get("txn_id") and x["verdict"] == "fraud"}
    _, outcomes = kinds(deployment, len(feed.transactions) + 1)
    causes = {(k in fraud, o[0]["cause"]) for k, o in outcomes.items()}
    assert set(outcomes) <= held
    # it says what it did with each hold as it goes (txn ids only)
    answered = {
        line.split(":")[0].removeprefix("hold on ")
        for line in centre.stderr.splitlines()
        if "customer answered" in line
    }
    assert set(outcomes) <= answered <= held
    assert (True, "fraud_reported") in causes and (False, "confirmed") in causes
    assert (False, "fraud_reported") not in causes  # honest customers never report a scam


def test_with_two_workers_each_verification_reaches_the_worker_holding_its_transfer(deployment: Deployment) -> None:
    """`verifications` is co-partitioned with `transactions`: the range assignor gives partition N of both to one worker."""
    rules = deployment.tmp / "rules.yaml"
    rules.write_text(RULES)
    for n in range(2):
        deployment.start_worker(INTERCEPTOR_RULES_PATH=str(rules), INTERCEPTOR_DATA_DIR=str(deployment.tmp / f"d{n}"))
    time.sleep(5)  # let the group settle with both members
    bootstrap = deployment.broker.bootstrap
    held = [t(f"h{i}", i, f"payer-{i}", f"new-{i}", 20_000) for i in range(24)]
    produce_json(bootstrap, deployment.topic("transactions"), held, "payer_account")
    first, _ = kinds(deployment, len(held))
    assert {d["action"] for d in first.values()} == {"hold"}
    answers = [v(x["txn_id"], x["payer_account"], "confirmed") for x in held]
    produce_json(bootstrap, deployment.topic("verifications"), answers, "payer_account")
    _, outcomes = kinds(deployment, 2 * len(held))
    assert sorted(outcomes) == sorted(x["txn_id"] for x in held)
    assert {o[0]["cause"] for o in outcomes.values()} == {"confirmed"}
    # both workers held (and closed) some of them: the partitions were really split between them
    closed_by = [sum(f"hold on {x['txn_id']} closed" in w.log() for x in held) for w in deployment.workers]
    assert sum(closed_by) == len(held) and min(closed_by) > 0, closed_by


def test_an_open_hold_moves_with_its_partition_to_another_worker(deployment: Deployment) -> None:
    """The worker holding a transfer leaves; the worker that takes its partitions over reopens the hold from
    `decisions` and closes it when the customer's answer arrives."""
    rules = deployment.tmp / "rules.yaml"
    rules.write_text(RULES)
    first = deployment.start_worker(INTERCEPTOR_RULES_PATH=str(rules), INTERCEPTOR_DATA_DIR=str(deployment.tmp / "a"))
    bootstrap = deployment.broker.bootstrap
    held = [t(f"m{i}", i, f"mover-{i}", f"new-{i}", 20_000) for i in range(8)]
    produce_json(bootstrap, deployment.topic("transactions"), held, "payer_account")
    first_decisions, _ = kinds(deployment, len(held))
    assert {d["action"] for d in first_decisions.values()} == {"hold"}

    second = deployment.start_worker(INTERCEPTOR_RULES_PATH=str(rules), INTERCEPTOR_DATA_DIR=str(deployment.tmp / "b"))
    first.stop(signal.SIGTERM)  # it leaves with its holds open; the second worker gets every partition
    time.sleep(3)
    answers = [v(x["txn_id"], x["payer_account"], "fraud_reported") for x in held]
    produce_json(bootstrap, deployment.topic("verifications"), answers, "payer_account")
    _, outcomes = kinds(deployment, 2 * len(held))
    assert sorted(outcomes) == sorted(x["txn_id"] for x in held)
    assert {(o[0]["action"], o[0]["cause"]) for o in outcomes.values()} == {("block", "fraud_reported")}
    assert "open holds" in second.log()  # the second worker reopened them (it never decided them)
    # and it still knew the payees: each fraud report made its payee a mule candidate
    labels = [r.json() for r in read_topic(bootstrap, deployment.topic("labels"), len(held), 60)]
    assert sorted(x["account"] for x in labels) == sorted(x["payee_account"] for x in held)

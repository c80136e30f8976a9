"""Holds and their outcomes through the pipeline (no broker): each way a hold closes, the repeat-transfer rule,
mule candidates from fraud reports and (when the ruleset says so) from blocks, that batch boundaries do not change
a decision, and that the simulated call centre calls only the bank's own customers."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from rules.errors import RuleError
from rules.ruleset import load_ruleset
from streams.backtest import Truth, Verifications, bank_customers, replay
from streams.outputs import RawRecord
from streams.pipeline import Topics, TransactionPipeline
from streams.quality import measure
from streams.scorer import RulesetScorer
from streams.simulator.callcentre import CallCentre

MINUTE = 60_000
T0 = 1_772_330_400_000  # 2026-03-01T02:00:00Z

RULESET = """
ruleset:
  version: lifecycle-test-1
  thresholds: {review: 30, hold: 60, block: 100}
  holds: {minutes: 30, on_expiry: %(on_expiry)s}
rules:
  - id: large_new_payee
    description: A large transfer to a new payee.
    when: amount >= 10000 and payee.new_for_payer
    score: 60
  - id: huge
    description: Far too much.
    when: amount >= 1000000
    score: 100
  - id: new_payee_while_held
    description: Another new payee while a transfer waits for verification.
    when: payer.open_holds > 0 and payee.new_for_payer
    score: 60
    action: hold
    hold_minutes: 45
  - id: payee_reported_by_victim
    description: A victim reported a transfer to this payee.
    when: payee.mule_candidate
    score: 60
    action: hold
"""


def pipeline_for(tmp_path: Path, on_expiry: str = "release", clock: str = "event") -> TransactionPipeline:
    path = tmp_path / f"rules-{on_expiry}.yaml"
    path.write_text(RULESET % {"on_expiry": on_expiry})
    return TransactionPipeline(RulesetScorer(load_ruleset(path)), Topics(), hold_clock=clock)  # type: ignore[arg-type]


def txn(txn_id: str, minute: float, payer: str, payee: str, amount: float) -> RawRecord:
    ts = T0 + int(minute * MINUTE)
    value = orjson.dumps({"txn_id": txn_id, "ts": ts, "payer_account": payer, "payee_account": payee, "amount": amount})
    return RawRecord(value, "transactions", 0, 0, ts, payer.encode())


def verification(txn_id: str, minute: float, payer: str, outcome: str) -> RawRecord:
    ts = T0 + int(minute * MINUTE)
    value = orjson.dumps(
        {"verification_id": f"v-{txn_id}", "txn_id": txn_id, "payer_account": payer, "outcome": outcome, "ts": ts}
    )
    return RawRecord(value, "verifications", 0, 0, ts, payer.encode())


def records_on(outcome, topic: str) -> list[dict]:
    return [orjson.loads(m.value) for m in outcome.messages if m.topic == topic]


def follow_ups(outcome) -> list[dict]:
    return [r for r in records_on(outcome, "decisions") if r["kind"] == "hold_outcome"]


@pytest.mark.parametrize(
    ("answer", "action", "cause", "verdict"),
    [
        ("confirmed", "release", "confirmed", "legit"),
        ("fraud_reported", "block", "fraud_reported", "fraud"),
        ("investigator_release", "release", "investigator", "legit"),
        ("investigator_block", "block", "investigator", "fraud"),
    ],
)
def test_a_verification_closes_the_hold_with_one_follow_up(
    tmp_path: Path, answer: str, action: str, cause: str, verdict: str
) -> None:
    pipeline = pipeline_for(tmp_path)
    first = pipeline.process([txn("t1", 0, "alice", "shop", 20_000)], now_ms=T0)
    assert [d["action"] for d in records_on(first, "decisions")] == ["hold"]
    assert len(pipeline.engine.holds) == 1

    closed = pipeline.process([verification("t1", 5, "alice", answer)], now_ms=T0 + 5 * MINUTE)
    [record] = follow_ups(closed)
    assert (record["txn_id"], record["action"], record["cause"]) == ("t1", action, cause)
    assert record["verification_id"] == "v-t1" and record["rules"] == ["large_new_payee"]
    assert closed.feedback == [("large_new_payee", verdict)]
    assert len(pipeline.engine.holds) == 0
    # the same answer again (a re-delivery) changes nothing and is counted as late
    again = pipeline.process([verification("t1", 6, "alice", answer)], now_ms=T0 + 6 * MINUTE)
    assert follow_ups(again) == [] and again.verifications == {"late": 1}


def test_a_fraud_report_makes_the_payee_a_mule_candidate_for_everyone(tmp_path: Path) -> None:
    pipeline = pipeline_for(tmp_path)
    pipeline.process([txn("t1", 0, "victim", "mule-9", 20_000)], now_ms=T0)
    closed = pipeline.process([verification("t1", 4, "victim", "fraud_reported")], now_ms=T0 + 4 * MINUTE)
    [label] = records_on(closed, "labels")
    assert (label["account"], label["verdict"], label["role"], label["source"]) == (
        "mule-9",
        "suspected",
        "mule",
        "verification",
    )
    # another customer's small transfer to that account is now held, naming why
    later = pipeline.process([txn("t2", 10, "bob", "mule-9", 800)], now_ms=T0 + 10 * MINUTE)
    [decision] = records_on(later, "decisions")
    assert decision["action"] == "hold"
    assert [r["rule"] for r in decision["reasons"]] == ["payee_reported_by_victim"]


@pytest.mark.parametrize("on_expiry", ["release", "block"])
def test_an_unverified_hold_gets_the_rulesets_default_at_its_deadline(tmp_path: Path, on_expiry: str) -> None:
    pipeline = pipeline_for(tmp_path, on_expiry)
    pipeline.process([txn("t1", 0, "alice", "shop", 20_000)], now_ms=T0)
    assert follow_ups(pipeline.expire(T0 + 29 * MINUTE)) == []
    [record] = follow_ups(pipeline.expire(T0 + 30 * MINUTE))
    assert (record["action"], record["cause"], record["verification_id"]) == (on_expiry, "expired", None)
    assert record["decided_at"] == record["deadline"]
    late = pipeline.process([verification("t1", 31, "alice", "confirmed")], now_ms=T0 + 31 * MINUTE)
    assert follow_ups(late) == [] and late.verifications == {"late": 1}


def test_a_verification_for_a_transfer_never_held_is_unknown(tmp_path: Path) -> None:
    pipeline = pipeline_for(tmp_path)
    outcome = pipeline.process([verification("nope", 1, "alice", "confirmed")], now_ms=T0 + MINUTE)
    assert outcome.verifications == {"unknown": 1} and outcome.messages == []


def test_a_broken_verification_is_a_dead_letter_naming_the_field(tmp_path: Path) -> None:
    pipeline = pipeline_for(tmp_path)
    bad = RawRecord(
        b'{"verification_id":"v","txn_id":"t","payer_account":"a","outcome":"maybe","ts":1772330400000}',
        "verifications",
        0,
        7,
        T0,
    )
    outcome = pipeline.process([bad], now_ms=T0)
    [dead] = records_on(outcome, "dead-letters")
    assert dead["field"] == "outcome" and "maybe" in dead["reason"]
    assert outcome.dead_letter_kinds == ["verifications"]


def test_while_a_payer_is_held_further_new_payees_are_held_too(tmp_path: Path) -> None:
    pipeline = pipeline_for(tmp_path)
    pipeline.process([txn("t1", 0, "victim", "safe-1", 20_000)], now_ms=T0)
    again = pipeline.process(
        [txn("t2", 5, "victim", "safe-2", 3_000), txn("t3", 6, "victim", "landlord", 3_000)], now_ms=T0
    )
    t2, t3 = records_on(again, "decisions")
    assert t2["action"] == "hold" and [r["rule"] for r in t2["reasons"]] == ["new_payee_while_held"]
    assert t2["reasons"][0]["features"]["payer.open_holds"] == 1
    # the rule's own hold_minutes (45) is longer than the ruleset's 30
    assert pipeline.engine.holds.holds["t2"].window_end_ms == T0 + 50 * MINUTE
    assert pipeline.scorer.ruleset.longest_hold_minutes == 45  # how far back a hand-over reads
    # t3 is a new payee too (first time paid): also held; a payee paid before would not be
    assert t3["action"] == "hold"


def test_a_confirmed_customer_may_pay_new_payees_again(tmp_path: Path) -> None:
    pipeline = pipeline_for(tmp_path)
    pipeline.process([txn("t1", 0, "alice", "car-dealer", 20_000)], now_ms=T0)
    pipeline.process([verification("t1", 3, "alice", "confirmed")], now_ms=T0 + 3 * MINUTE)
    after = pipeline.process([txn("t2", 10, "alice", "insurer", 3_000)], now_ms=T0 + 10 * MINUTE)
    [decision] = records_on(after, "decisions")
    assert decision["action"] == "allow"


def test_holds_do_not_depend_on_batch_boundaries(tmp_path: Path) -> None:
    """A payer held earlier in the same batch counts as held (the row is scored again), as across batches."""
    feed = [
        txn("t1", 0, "victim", "safe-1", 20_000),
        txn("t2", 1, "other", "shop", 50),
        txn("t3", 2, "victim", "safe-2", 2_000),
        txn("t4", 3, "victim", "safe-3", 2_000),
        txn("t5", 40, "victim", "safe-4", 2_000),
    ]
    results = []
    for size in (1, 2, len(feed)):
        pipeline = pipeline_for(tmp_path)
        decisions = []
        for i in range(0, len(feed), size):
            decisions += records_on(pipeline.process(feed[i : i + size], now_ms=T0), "decisions")
        results.append([(d["txn_id"], d["action"], [r["rule"] for r in d["reasons"]]) for d in decisions])
    assert results[0] == results[1] == results[2]
    assert [action for _, action, _ in results[0]] == ["hold", "allow", "hold", "hold", "hold"]


def test_wall_clock_deadlines_in_the_live_worker(tmp_path: Path) -> None:
    """Live: a customer gets the hold's minutes from when the worker decided, whatever the event time says."""
    pipeline = pipeline_for(tmp_path, clock="wall")
    decided = T0 + 365 * 24 * 60 * MINUTE  # a replay of last year's transactions
    pipeline.process([txn("t1", 0, "alice", "shop", 20_000)], now_ms=decided)
    assert follow_ups(pipeline.expire(decided + 29 * MINUTE)) == []
    assert [r["cause"] for r in follow_ups(pipeline.expire(decided + 30 * MINUTE))] == ["expired"]


def test_backtest_with_the_call_centre_reports_what_holds_saved(tmp_path: Path) -> None:
    feed = tmp_path / "transactions.jsonl"
    lines = [txn(f"f{i}", 60 * i, f"victim{i}", f"mule{i}", 20_000).value for i in range(20)]
    lines += [txn(f"h{i}", 60 * i + 1, f"honest{i}", f"dealer{i}", 20_000).value for i in range(20)]
    feed.write_bytes(b"\n".join(sorted(lines, key=lambda v: orjson.loads(v)["ts"])) + b"\n")
    truth = {f"f{i}": "fraud" for i in range(20)}

    def run() -> dict:
        pipeline = pipeline_for(tmp_path)
        pending = Verifications(CallCentre(seed=3), {k: Truth(v) for k, v in truth.items()})
        decisions: list[dict] = []
        replay(pipeline, feed, 7, lambda r: decisions.append(orjson.loads(r)), verifications=pending)
        return measure(decisions, truth).report()

    report = run()
    holds = report["holds"]
    assert holds["opened"] == 40 and holds["closed"] == 40  # every hold closes when the history ends
    assert holds["fraud_amount_blocked_after_hold"] > 0  # most victims report the scam when called
    assert holds["outcomes"].get("release/confirmed", 0) > 10  # most honest customers confirm
    assert holds["fraud_amount_blocked_after_hold"] + holds["fraud_amount_released_after_hold"] == 400_000
    assert report == run()  # the call centre's answers are reproducible


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        ("holds", "{minutes: 0}", "'holds.minutes' must be > 0 minutes, found 0"),
        ("holds", "{on_expiry: wait}", "'on_expiry' must be one of release, block, found 'wait'"),
        ("holds", "{minutes: 30, extend: 5}", "unknown key 'extend' (allowed: minutes, on_expiry)"),
        ("holds", "30", "'holds' must map minutes/on_expiry to values"),
        ("blocks", "{report_payee: maybe}", "'blocks.report_payee' must be true or false, found 'maybe'"),
        ("blocks", "{report: true}", "unknown key 'report' (allowed: report_payee)"),
        ("blocks", "true", "'blocks' must map report_payee to true or false"),
    ],
)
def test_a_bad_holds_or_blocks_header_is_a_positioned_rule_error(
    tmp_path: Path, header: str, value: str, message: str
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "ruleset:\n  version: v\n  thresholds: {review: 1, hold: 2, block: 3}\n"
        f"  {header}: {value}\nrules:\n  - {{id: a, description: d, when: amount > 1, score: 1}}\n"
    )
    with pytest.raises(RuleError) as caught:
        load_ruleset(path)
    assert f"{path}:4:" in str(caught.value) and message in str(caught.value)


def test_the_call_centre_calls_only_the_banks_own_customers(tmp_path: Path) -> None:
    """A stranger (another bank's customer, sent without an opening date) paying an account here is not called:
    the hold runs to its deadline; the bank's own customers are called as before."""
    feed = tmp_path / "transactions.jsonl"
    lines = []
    for i in range(20):
        customer = {"payer_account_opened": "2020-01-01"} if i % 2 else {}
        lines.append(orjson.loads(txn(f"f{i}", 60 * i, f"payer{i}", f"mule{i}", 20_000).value) | customer)
    feed.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    customers = bank_customers(feed)
    assert customers == {f"payer{i}" for i in range(1, 20, 2)}
    truth = {f"f{i}": Truth("fraud") for i in range(20)}
    pending = Verifications(CallCentre(seed=3), truth, customers)
    decisions: list[dict] = []
    replay(pipeline_for(tmp_path), feed, 7, lambda r: decisions.append(orjson.loads(r)), verifications=pending)
    causes = {d["txn_id"]: d["cause"] for d in decisions if d["kind"] == "hold_outcome"}
    assert len(causes) == 20 and pending.not_called == 10
    assert {causes[f"f{i}"] for i in range(0, 20, 2)} == {"expired"}  # nobody called the strangers
    assert "fraud_reported" in {causes[f"f{i}"] for i in range(1, 20, 2)}  # the bank's customers report


def block_pipeline(tmp_path: Path, report_payee: str) -> TransactionPipeline:
    path = tmp_path / f"rules-blocks-{report_payee}.yaml"
    text = RULESET % {"on_expiry": "release"}
    path.write_text(text.replace("  holds:", f"  blocks: {{report_payee: {report_payee}}}\n  holds:", 1))
    return TransactionPipeline(RulesetScorer(load_ruleset(path)), Topics(), hold_clock="event")  # type: ignore[arg-type]


def test_a_block_makes_the_payee_a_mule_candidate_when_the_ruleset_says_so(tmp_path: Path) -> None:
    pipeline = block_pipeline(tmp_path, "true")
    blocked = pipeline.process([txn("t1", 0, "victim", "mule-9", 2_000_000)], now_ms=T0)
    assert [d["action"] for d in records_on(blocked, "decisions")] == ["block"]
    [label] = records_on(blocked, "labels")
    assert (label["account"], label["verdict"], label["role"], label["source"]) == (
        "mule-9",
        "suspected",
        "mule",
        "block",
    )
    assert "t1" in label["reason"] and blocked.mule_reports == 1
    later = pipeline.process([txn("t2", 10, "bob", "mule-9", 800)], now_ms=T0 + 10 * MINUTE)
    [decision] = records_on(later, "decisions")
    assert (decision["action"], [r["rule"] for r in decision["reasons"]]) == ("hold", ["payee_reported_by_victim"])
    # a re-delivered blocked transfer gets its decision again, and publishes nothing
    again = pipeline.process([txn("t1", 0, "victim", "mule-9", 2_000_000)], now_ms=T0 + 11 * MINUTE)
    assert records_on(again, "labels") == [] and again.redelivered == 1


@pytest.mark.parametrize("report_payee", ["false", None])
def test_by_default_a_block_makes_nobody_a_candidate(tmp_path: Path, report_payee: str | None) -> None:
    pipeline = pipeline_for(tmp_path) if report_payee is None else block_pipeline(tmp_path, report_payee)
    blocked = pipeline.process([txn("t1", 0, "victim", "mule-9", 2_000_000)], now_ms=T0)
    assert records_on(blocked, "labels") == [] and blocked.mule_reports == 0
    later = pipeline.process([txn("t2", 10, "bob", "mule-9", 800)], now_ms=T0 + 10 * MINUTE)
    assert [d["action"] for d in records_on(later, "decisions")] == ["allow"]


def test_a_blocked_payee_is_a_candidate_whatever_the_batch_boundaries(tmp_path: Path) -> None:
    """A transfer to a payee blocked earlier in the same batch is scored again as a candidate's, as across
    batches; a re-decided block (a restart before the checkpoint) publishes the same label."""
    feed = [
        txn("t1", 0, "victim", "mule-9", 2_000_000),
        txn("t2", 1, "bob", "mule-9", 800),
        txn("t3", 2, "carol", "shop", 800),
        txn("t4", 3, "dave", "mule-9", 900),
    ]
    results, labels = [], []
    for size in (1, 2, len(feed)):
        pipeline = block_pipeline(tmp_path, "true")
        decisions, published = [], []
        for i in range(0, len(feed), size):
            out = pipeline.process(feed[i : i + size], now_ms=T0 + 60 * MINUTE)
            decisions += records_on(out, "decisions")
            published += [m.value for m in out.messages if m.topic == "labels"]
        results.append([(d["txn_id"], d["action"], [r["rule"] for r in d["reasons"]]) for d in decisions])
        labels.append((published, dict(pipeline.engine.mule_candidates)))
    assert results[0] == results[1] == results[2]
    assert [action for _, action, _ in results[0]] == ["block", "hold", "allow", "hold"]
    assert labels[0] == labels[1] == labels[2] and len(labels[0][0]) == 1


def test_a_label_applied_again_never_shortens_a_candidacy(tmp_path: Path) -> None:
    from streams.events import Label

    engine = pipeline_for(tmp_path).engine
    label = Label("suspected", account="mule-9", role="mule", source="block")
    engine.add_label(label, now_ms=T0 + 60 * MINUTE)
    engine.add_label(label, now_ms=T0)  # read back later, dated earlier (event time against the broker's)
    assert engine.mule_candidates["mule-9"] == T0 + 60 * MINUTE + engine.config.mule_candidate_days * 86_400_000
    engine.add_label(Label("legit", account="mule-9"), now_ms=T0)
    assert "mule-9" not in engine.mule_candidates

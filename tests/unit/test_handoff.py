"""What a worker learns from `decisions` when it takes a partition over (streams/handoff.py)."""

from __future__ import annotations

import pickle

import orjson

from streams.dedup import DecisionLog, Remembered
from streams.handoff import DecisionHandoff, remember
from streams.outputs import RawRecord, Verdict
from streams.pipeline import TransactionPipeline
from streams.scorer import AllowAllScorer


def test_first_decisions_are_learnt_once_and_answered_byte_for_byte() -> None:
    log = DecisionLog()
    held = orjson.dumps({"kind": "decision", "txn_id": "t1", "action": "hold", "score": 60.0, "reasons": []})
    outcome = orjson.dumps({"kind": "hold_outcome", "txn_id": "t1", "action": "release", "cause": "confirmed"})
    assert remember(log, held) is True
    assert remember(log, outcome) is False  # follow-ups are not first decisions
    assert remember(log, b"{not json") is False
    assert remember(log, held) is False  # already known
    entry = log.get("t1")
    assert entry == Remembered(None, held, True)

    # the new owner answers the re-delivered transaction with the first owner's decision, even with another scorer
    pipeline = TransactionPipeline(AllowAllScorer(), decision_log=log)
    txn = {"txn_id": "t1", "ts": 1_772_330_400_000, "payer_account": "a", "payee_account": "b", "amount": 50_000}
    out = pipeline.process([RawRecord(orjson.dumps(txn), "transactions", 3, 9, 0, b"a")], now_ms=0)
    decisions = [m for m in out.messages if m.topic == "decisions"]
    assert [(m.value, m.partition) for m in decisions] == [(held, 3)]
    assert out.redelivered == 1 and out.transactions == []


def test_holds_decided_and_not_closed_in_the_partition_are_still_open() -> None:
    log = DecisionLog()
    terms = {"deadline": 9_000, "held_at": 1_000, "until": 61_000, "on_expiry": "block", "payee_account": "mule-1"}
    decision = {"kind": "decision", "action": "hold", "score": 60.0, "amount": 900.0, "currency": "CNY",
                "ruleset": "v1", "reasons": [{"rule": "r1"}], "hold": terms}  # fmt: skip
    pending: dict = {}
    for txn_id in ("open", "closed"):
        remember(log, orjson.dumps({**decision, "txn_id": txn_id}), pending)
    remember(log, orjson.dumps({"kind": "hold_outcome", "txn_id": "closed", "action": "release"}), pending)
    # a re-delivery writes the closed hold's decision again, after its outcome: it stays closed
    remember(log, orjson.dumps({**decision, "txn_id": "closed"}), pending)
    remember(log, orjson.dumps({**decision, "txn_id": "allowed", "action": "allow", "hold": None}), pending)
    assert [k for k, h in pending.items() if h is not None] == ["open"]
    hold = pending["open"]
    assert (hold.payee, hold.deadline_ms, hold.window_end_ms, hold.on_expiry, hold.rules) == (
        "mule-1",
        9_000,
        61_000,
        "block",
        ("r1",),
    )


def test_a_reopened_holds_outcome_goes_to_the_partition_of_its_decision() -> None:
    # the bank's producer may partition by something else than the payer key: the outcome must still go where
    # its decision is, or the next worker to take that partition over would reopen a hold already closed
    terms = {"deadline": 9_000, "held_at": 1_000, "until": 61_000, "on_expiry": "block", "payee_account": "mule-1"}
    decision = {"kind": "decision", "txn_id": "t1", "action": "hold", "score": 60.0, "amount": 900.0,
                "currency": "CNY", "ruleset": "v1", "reasons": [{"rule": "r1"}], "hold": terms}  # fmt: skip
    pending: dict = {}
    remember(DecisionLog(), orjson.dumps(decision), pending)
    pipeline = TransactionPipeline(AllowAllScorer(), hold_clock="event")
    handoff = DecisionHandoff("decisions", lambda: pipeline.decision_log, {}, holds=lambda: pipeline.engine.holds)
    assert handoff._reopen(pending, {"t1": ("payer-1", 2)}) == 1
    out = pipeline.expire(now_ms=10_000)  # past the deadline: the hold closes on its default
    assert [(m.topic, m.key, m.partition) for m in out.messages] == [("decisions", b"payer-1", 2)]
    assert orjson.loads(out.messages[0].value)["kind"] == "hold_outcome"


def test_a_checkpointed_decision_log_answers_as_before() -> None:
    # what a restarted worker reads back: the same decisions in the same order (oldest forgotten first), the
    # fingerprints that catch a reused txn_id (full 64-bit digests) and those learnt from `decisions` (None)
    log = DecisionLog(capacity=3)
    for i, fingerprint in enumerate((2**64 - 1, None, 0, 12345)):
        log.put(f"t{i}", Remembered(fingerprint, orjson.dumps({"txn_id": f"t{i}", "n": "x" * i}), i % 2 == 0))
    restored = pickle.loads(pickle.dumps(log))
    assert [(t, restored.get(t)) for t in ("t0", "t1", "t2", "t3")] == [
        (t, log.get(t)) for t in ("t0", "t1", "t2", "t3")
    ]
    assert restored.get("t0") is None and restored.get("t1") == Remembered(None, log.get("t1").decision, False)
    restored.put("t4", Remembered(1, b"{}", False))  # the capacity came back too: t1 goes
    assert restored.get("t1") is None and len(restored) == 3
    assert len(pickle.loads(pickle.dumps(DecisionLog()))) == 0


class HoldEverything:
    version = "v1"

    def score(self, transactions, features):
        return [Verdict("hold", 60.0) for _ in transactions]


def test_a_hold_that_moved_to_another_worker_gets_one_outcome_only() -> None:
    t0, minute = 1_772_330_400_000, 60_000
    first, second = TransactionPipeline(HoldEverything()), TransactionPipeline(HoldEverything())
    txn = orjson.dumps({"txn_id": "t1", "ts": t0, "payer_account": "P", "payee_account": "A", "amount": 2000.0})
    decisions = [m for m in first.process([RawRecord(txn, "transactions", 2, 0, t0, b"P")], t0).messages]

    def read(pipeline: TransactionPipeline, owners: dict) -> None:  # what DecisionHandoff does with decisions[2]
        pending: dict = {}
        for m in decisions:
            remember(pipeline.decision_log, m.value, pending)
        handoff = DecisionHandoff("decisions", lambda: pipeline.decision_log, {}, holds=lambda: pipeline.engine.holds)
        handoff._reopen(pending, owners)

    # partition 2 moves to the second worker, which reopens the hold and closes it on the customer's answer
    read(second, {"t1": ("P", 2)})
    answer = {"verification_id": "v1", "txn_id": "t1", "payer_account": "P", "outcome": "fraud_reported",
              "ts": t0 + minute}  # fmt: skip
    closed = second.process([RawRecord(orjson.dumps(answer), "verifications", 2, 0, t0 + minute, b"P")], t0 + minute)
    decisions += closed.messages
    assert [o.action for o in closed.hold_outcomes] == ["block"]

    # the first worker, assigned other partitions, lets the hold go instead of expiring it at its deadline
    assert first.engine.holds.keep_partitions({0, 1}) == 1
    assert first.expire(t0 + 31 * minute).hold_outcomes == []
    # and one that had kept it (partition 2 came back to it) closes it when it reads the outcome
    again = TransactionPipeline(HoldEverything())
    again.process([RawRecord(txn, "transactions", 2, 0, t0, b"P")], t0)
    read(again, {})
    assert again.expire(t0 + 31 * minute).hold_outcomes == []

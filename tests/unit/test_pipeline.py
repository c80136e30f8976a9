"""The batch pipeline without Kafka: valid records become decisions, broken ones dead letters, in order."""

import orjson

from streams.dedup import DecisionLog
from streams.outputs import RawRecord, Verdict
from streams.pipeline import Topics, TransactionPipeline
from streams.scorer import AllowAllScorer


def record(value: bytes, offset: int) -> RawRecord:
    return RawRecord(value=value, topic="transactions", partition=0, offset=offset, timestamp_ms=1_000)


def txn(i: int, amount: str = "10.00") -> bytes:
    return orjson.dumps(
        {"txn_id": f"t{i}", "ts": 1_772_325_000_000, "payer_account": "A", "payee_account": "B", "amount": amount}
    )


class HoldBigOnes:
    version = "test-1"

    def score(self, transactions, features):
        return [Verdict("hold" if t.amount > 1000 else "allow", 1.0) for t in transactions]


def test_broken_records_are_dead_lettered_with_their_position_and_the_rest_decided() -> None:
    pipeline = TransactionPipeline(AllowAllScorer(), Topics("d", "a", "dl"))
    out = pipeline.process([record(txn(1), 0), record(b"{oops", 1), record(txn(2), 2)], now_ms=1_050)
    assert [m.topic for m in out.messages] == ["dl", "d", "d"]
    letter = orjson.loads(out.messages[0].value)
    assert (letter["offset"], letter["reason_class"]) == (1, "invalid_json")
    decisions = [orjson.loads(m.value) for m in out.messages[1:]]
    assert [d["txn_id"] for d in decisions] == ["t1", "t2"]
    assert all(d["latency_ms"] == 50 and d["ruleset"] == "none" for d in decisions)


def test_non_allow_decisions_are_copied_to_alerts() -> None:
    pipeline = TransactionPipeline(HoldBigOnes(), Topics("d", "a", "dl"))
    out = pipeline.process([record(txn(1, "5000"), 0), record(txn(2, "5"), 1)], now_ms=2_000)
    assert [(m.topic, orjson.loads(m.value)["txn_id"]) for m in out.messages] == [
        ("d", "t1"),
        ("a", "t1"),
        ("d", "t2"),
    ]
    assert out.messages[0].key == b"A"


def test_a_batch_of_only_broken_records_calls_no_scorer() -> None:
    class Exploding:
        version = "x"

        def score(self, transactions, features):
            raise AssertionError("scorer called for an empty batch")

    out = TransactionPipeline(Exploding()).process([record(b"[]", 0)], now_ms=0)
    assert len(out.dead_letters) == 1


def test_redelivered_transaction_gets_the_identical_decision_and_is_not_decided_again() -> None:
    pipeline = TransactionPipeline(HoldBigOnes(), Topics("d", "a", "dl"))
    first = pipeline.process([record(txn(1, "5000"), 0)], now_ms=2_000)
    again = pipeline.process([record(txn(1, "5000"), 0)], now_ms=9_000)
    assert [m.value for m in again.messages] == [m.value for m in first.messages]  # decision and alert
    assert again.transactions == [] and again.redelivered == 1


def test_reused_txn_id_with_different_content_is_dead_lettered() -> None:
    pipeline = TransactionPipeline(AllowAllScorer(), Topics("d", "a", "dl"))
    pipeline.process([record(txn(1, "10.00"), 0)], now_ms=0)
    out = pipeline.process([record(txn(1, "99.00"), 5), record(txn(1, "10.00"), 6), record(txn(1, "98.00"), 7)], 0)
    assert [m.topic for m in out.messages] == ["dl", "d", "dl"]
    letter = orjson.loads(out.messages[0].value)
    assert letter["reason_class"] == "duplicate_txn_id"
    assert letter["reason"] == "field 'txn_id': 't1' was already decided for a transaction with different content"


def test_duplicate_inside_one_batch_is_decided_once() -> None:
    pipeline = TransactionPipeline(AllowAllScorer(), Topics("d", "a", "dl"))
    out = pipeline.process([record(txn(1), 0), record(txn(1), 1)], now_ms=0)
    assert [m.topic for m in out.messages] == ["d"]
    assert out.redelivered == 1


def test_redelivery_of_days_of_history_leaves_the_state_as_it_was() -> None:
    """A restart after a backlog re-reads everything since the last commit: here three days of one payer's
    transfers, far older than the 24 h the state keeps transfers for. Its running mean and counts must not
    take them twice."""
    day_ms = 86_400_000

    def spaced(i: int) -> bytes:
        return orjson.dumps(
            {"txn_id": f"t{i}", "ts": 1_772_325_000_000 + i * day_ms // 4, "payer_account": "A",
             "payee_account": "B", "amount": f"{10 + i}.00"}
        )  # fmt: skip

    history = [record(spaced(i), i) for i in range(12)]
    once = TransactionPipeline(AllowAllScorer(), Topics("d", "a", "dl"))
    once.process(history, now_ms=0)
    twice = TransactionPipeline(AllowAllScorer(), Topics("d", "a", "dl"))
    twice.process(history, now_ms=0)
    again = twice.process(history, now_ms=0)
    assert again.redelivered == len(history)
    assert twice.engine.store.account("A") == once.engine.store.account("A")


def test_the_decision_log_forgets_the_oldest_decisions_beyond_its_capacity() -> None:
    pipeline = TransactionPipeline(HoldBigOnes(), Topics("d", "a", "dl"), decision_log=DecisionLog(capacity=3))
    pipeline.process([record(txn(i), i) for i in range(5)], now_ms=0)
    assert len(pipeline.decision_log) == 3
    again = pipeline.process([record(txn(i), i) for i in range(5)], now_ms=0)
    # t2..t4 are answered from the log; t0 and t1 were forgotten and are decided anew, pushing t2 and t3 out
    assert again.redelivered == 3 and [t.txn_id for t in again.transactions] == ["t0", "t1"]
    assert [pipeline.decision_log.get(f"t{i}") is not None for i in range(5)] == [True, True, False, False, True]
    assert pipeline.decision_log.puts == 7

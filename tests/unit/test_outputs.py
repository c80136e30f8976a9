"""The batch encoder of decisions writes what the one-record encoder writes, byte for byte."""

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.currencies import ISO_4217
from streams.events import Transaction
from streams.lifecycle.holds import Hold
from streams.outputs import ACTIONS, Reason, Verdict, encode_decision, encode_decisions

NOW_MS = 1_772_330_400_000
# any text, with the characters JSON escapes and the one a template formats with made likely
text = st.text(st.sampled_from('%"\\\n') | st.characters(codec="utf-8"), min_size=1, max_size=20)
transactions = st.builds(
    Transaction,
    txn_id=text,
    ts_ms=st.integers(NOW_MS - 86_400_000, NOW_MS),
    payer_account=text,
    payee_account=text,
    amount=st.floats(0.01, 1e11),
    currency=st.sampled_from(sorted(ISO_4217)),
)
verdicts = st.builds(
    Verdict,
    action=st.sampled_from(ACTIONS),
    score=st.floats(0, 1000),
    reasons=st.lists(st.builds(Reason, rule=text, score=st.floats(0, 100), message=text), max_size=2).map(tuple),
    shadow=st.lists(text, max_size=2).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(
    batch=st.lists(st.tuples(transactions, verdicts, st.integers(NOW_MS - 10_000, NOW_MS + 10), st.booleans())),
    ruleset=text,
)
def test_a_batch_encodes_each_decision_as_encode_decision_does(
    batch: list[tuple[Transaction, Verdict, int, bool]], ruleset: str
) -> None:
    holds = {
        txn.txn_id: Hold(
            txn.txn_id,
            txn.payer_account,
            txn.payee_account,
            txn.amount,
            txn.currency,
            txn.ts_ms,
            txn.ts_ms + 60_000,
            NOW_MS + 60_000,
            ("r1",),
            "release",
            ruleset,
        )
        for txn, _, _, held in batch
        if held
    }
    txns, verdict_list, received, _ = zip(*batch, strict=True) if batch else ((), (), (), ())
    encoded = encode_decisions(txns, verdict_list, ruleset, received, NOW_MS, holds)
    expected = [
        encode_decision(txn, verdict, ruleset, received_ms, NOW_MS, holds.get(txn.txn_id))
        for txn, verdict, received_ms in zip(txns, verdict_list, received, strict=True)
    ]
    assert encoded == expected
    assert all(orjson.loads(value)["txn_id"] == txn.txn_id for value, txn in zip(encoded, txns, strict=True))

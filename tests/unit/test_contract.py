"""docs/events.md and streams/events.py must describe the same contract, field by field."""

import base64
import dataclasses
import re
from pathlib import Path

import orjson
import pytest

from streams.errors import EventError
from streams.events import (
    Call,
    Label,
    Transaction,
    Verification,
    decode_call,
    decode_label,
    decode_transaction,
    decode_verification,
)
from streams.lifecycle.holds import Cause, Hold, HoldOutcome
from streams.outputs import (
    RawRecord,
    Reason,
    Verdict,
    encode_dead_letter,
    encode_decision,
    encode_hold_outcome,
    encode_mule_report,
)

DOC = (Path(__file__).parents[2] / "docs" / "events.md").read_text()

FULL = {
    "transactions": {
        "txn_id": "t-1",
        "ts": "2026-03-01T08:30:00+08:00",
        "payer_account": "6222020000001111",
        "payee_account": "6222020000009999",
        "amount": "48000.00",
        "currency": "CNY",
        "channel": "mobile",
        "payer_phone": "+8613800000000",
        "device_id": "dev-7f3a",
        "ip": "10.1.2.3",
        "payee_bank": "ICBC",
        "payer_account_opened": "2019-04-02",
        "payee_account_opened": "2026-02-27",
    },
    "calls": {
        "call_id": "c-1",
        "callee_phone": "+8613800000000",
        "caller_number": "+85290000000",
        "started_at": 1772325000000,
        "duration_s": 300,
        "caller_risk": "overseas",
    },
    "labels": {
        "txn_id": "t-1",
        "account": "6222020000009999",
        "verdict": "fraud",
        "role": "mule",
        "reason": "case 77: received from 12 victims",
        "source": "investigator",
    },
    "verifications": {
        "verification_id": "v-1",
        "txn_id": "t-1",
        "payer_account": "6222020000001111",
        "outcome": "fraud_reported",
        "ts": "2026-03-01T08:41:00+08:00",
        "reason": "customer was told by 'police' to move savings",
    },
}
DECODERS = {
    "transactions": decode_transaction,
    "calls": decode_call,
    "labels": decode_label,
    "verifications": decode_verification,
}
RECORDS = {"transactions": Transaction, "calls": Call, "labels": Label, "verifications": Verification}
INPUTS = list(DECODERS)
# wire name -> record attribute where they differ (times become epoch milliseconds)
RENAMED = {"ts": "ts_ms", "started_at": "started_ms"}


def documented(topic: str, heading: str | None = None) -> dict[str, bool | None]:
    """{field: required} from the table under '## `topic`' (None where the table has no 'required' column)."""
    section = DOC.split(heading or f"## `{topic}`\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    header = next(line for line in section.splitlines() if line.startswith("| field"))
    has_required = "required" in header
    fields: dict[str, bool | None] = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        name = re.fullmatch(r"`([a-z0-9_]+)`", cells[0]).group(1)  # type: ignore[union-attr]
        fields[name] = (cells[2] == "yes") if has_required else None
    return fields


@pytest.mark.parametrize("topic", INPUTS)
def test_the_full_example_uses_every_documented_field(topic: str) -> None:
    assert set(FULL[topic]) == set(documented(topic))


@pytest.mark.parametrize("topic", INPUTS)
def test_record_attributes_are_the_documented_fields(topic: str) -> None:
    record = RECORDS[topic]
    attributes = set(record._fields) if hasattr(record, "_fields") else {f.name for f in dataclasses.fields(record)}
    assert attributes == {RENAMED.get(name, name) for name in documented(topic)}


@pytest.mark.parametrize(
    ("topic", "field"),
    [(t, f) for t in ("transactions", "calls", "verifications") for f, req in documented(t).items() if req],
)
def test_each_required_field_is_required(topic: str, field: str) -> None:
    message = {k: v for k, v in FULL[topic].items() if k != field}
    with pytest.raises(EventError) as caught:
        DECODERS[topic](orjson.dumps(message))
    assert caught.value.field == field
    assert caught.value.reason_class == "missing_field"


@pytest.mark.parametrize(
    ("topic", "field"),
    [(t, f) for t in INPUTS for f, req in documented(t).items() if not req],
)
@pytest.mark.parametrize("how", ["absent", "null"])
def test_each_optional_field_may_be_absent_or_null(topic: str, field: str, how: str) -> None:
    message = dict(FULL[topic])
    if how == "absent":
        del message[field]
    else:
        message[field] = None
    DECODERS[topic](orjson.dumps(message))


@pytest.mark.parametrize("topic", INPUTS)
def test_unknown_fields_are_ignored(topic: str) -> None:
    plain = DECODERS[topic](orjson.dumps(FULL[topic]))
    extra = DECODERS[topic](orjson.dumps({**FULL[topic], "x_bank_internal": {"a": [1]}}))
    assert plain == extra


def test_decision_record_has_exactly_the_documented_fields() -> None:
    txn = decode_transaction(orjson.dumps(FULL["transactions"]))
    verdict = Verdict("hold", 70.0, (Reason("r1", 70.0, "why", {"amount": 48000.0}),), ("s1",))
    record = orjson.loads(encode_decision(txn, verdict, "v1", received_ms=1000, now_ms=1012))
    assert set(record) == set(documented("decisions"))
    assert set(record["reasons"][0]) == {"rule", "score", "message", "features"}
    assert record["latency_ms"] == 12 and record["action"] == "hold" and record["shadow"] == ["s1"]
    assert record["kind"] == "decision"


def test_hold_outcome_record_has_exactly_the_documented_fields() -> None:
    hold = Hold("t-1", "p", "q", 48000.0, "CNY", 1000, 61000, 1_801_000, ("r1",), "release", "v1")
    record = orjson.loads(encode_hold_outcome(HoldOutcome(hold, "block", Cause.FRAUD_REPORTED, 5000, "v-9", "fraud")))
    assert set(record) == set(documented("decisions", "## Hold outcomes\n"))
    assert (record["kind"], record["action"], record["cause"], record["verification_id"]) == (
        "hold_outcome",
        "block",
        "fraud_reported",
        "v-9",
    )
    assert record["cause"] in DOC.split("## Hold outcomes")[1]


def test_a_fraud_report_publishes_a_label_the_contract_accepts() -> None:
    hold = Hold("t-1", "p", "mule-1", 48000.0, "CNY", 1000, 61000, 1_801_000, ("r1",), "release", "v1")
    label = decode_label(encode_mule_report(HoldOutcome(hold, "block", Cause.FRAUD_REPORTED, 5000, "v-9", "fraud")))
    assert (label.account, label.verdict, label.role, label.source) == ("mule-1", "suspected", "mule", "verification")
    assert "t-1" in (label.reason or "")


def test_dead_letter_record_has_exactly_the_documented_fields_and_the_original_bytes() -> None:
    original = b"\xff not json"
    record = orjson.loads(
        encode_dead_letter(
            RawRecord(original, "transactions", 3, 42, 0), EventError("", "bad", "invalid_json"), now_ms=0
        )
    )
    assert set(record) == set(documented("dead-letters"))
    assert base64.b64decode(record["original_b64"]) == original
    assert (record["topic"], record["partition"], record["offset"]) == ("transactions", 3, 42)
    assert record["reason_class"] in DOC.split("## `dead-letters`")[1]

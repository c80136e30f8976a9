"""Every way a bank feed can send a broken transaction, paired with the reason the dead letter carries."""

from pathlib import Path

import pytest

from streams.errors import REASON_CLASSES, EventError
from streams.events import decode_call, decode_label, decode_transaction

TESTDATA = Path(__file__).parent / "testdata" / "transactions"

BAD_TRANSACTIONS = [
    ("amount_bool", "invalid_field", "field 'amount': expected a number, found a boolean"),
    ("amount_infinite", "invalid_json", "message is not valid JSON: number is infinity when parsed as double"),
    ("amount_not_decimal", "invalid_field", "field 'amount': expected a decimal string like '1250.00', found '12,50'"),
    (
        "bad_opened_date",
        "invalid_field",
        "field 'payer_account_opened': expected an ISO date like '2024-05-31', found '31/05/2024'",
    ),
    ("huge_amount", "invalid_field", "field 'amount': must be <= 100,000,000,000, got 1000000000000000.0"),
    ("huge_amount_string", "invalid_field", "field 'amount': must be <= 100,000,000,000, got '********0000'"),
    ("amount_too_precise", "invalid_field", "field 'amount': has 7 decimal places, at most 6: '5.*******'"),
    ("missing_amount", "missing_field", "field 'amount': is required"),
    ("missing_txn_id", "missing_field", "field 'txn_id': is required"),
    ("negative_amount", "invalid_field", "field 'amount': must be > 0, got -5"),
    ("negative_amount_string", "invalid_field", "field 'amount': must be > 0, got '-5.00'"),
    ("not_json", "invalid_json", "message is not valid JSON: unexpected end of data"),
    ("not_object", "invalid_json", "expected a JSON object, found an array"),
    ("not_utf8", "invalid_encoding", "message is not valid UTF-8"),
    ("oversized", "oversized", "message is 70024 bytes, the limit is 65536"),
    (
        "ts_far_future",
        "out_of_range",
        "field 'ts': must lie between 2000-01-01 and 2100-01-01, got '2999-01-01T00:00:00Z'",
    ),
    (
        "ts_garbage",
        "invalid_field",
        "field 'ts': expected RFC 3339 like '2026-03-01T08:30:00+08:00', found 'yesterday'",
    ),
    ("ts_no_offset", "invalid_field", "field 'ts': RFC 3339 time needs an offset or 'Z', found '2026-03-01 08:30'"),
    (
        "ts_seconds_not_ms",
        "out_of_range",
        "field 'ts': must lie between 2000-01-01 and 2100-01-01, got 1767225600 "
        "(epoch milliseconds expected; this looks like seconds)",
    ),
    ("txn_id_blank", "invalid_field", "field 'txn_id': must not be empty"),
    ("txn_id_number", "invalid_field", "field 'txn_id': expected a string, found a number"),
    (
        "unknown_channel",
        "invalid_field",
        "field 'channel': expected one of atm, counter, mobile, online, pos, third_party, found 'fax'",
    ),
    ("unknown_currency", "invalid_field", "field 'currency': expected an ISO 4217 code such as 'CNY', found 'XYZ'"),
    ("zero_amount", "invalid_field", "field 'amount': must be > 0, got 0"),
]


def test_the_reason_classes_are_the_documented_ones() -> None:
    """`interceptor dead-letters --reason` offers REASON_CLASSES; docs/events.md lists them for the record."""
    doc = (Path(__file__).parents[2] / "docs" / "events.md").read_text()
    row = next(line for line in doc.splitlines() if line.startswith("| `reason_class` |"))
    assert [word for word in REASON_CLASSES if f"`{word}`" in row] == list(REASON_CLASSES)
    assert row.count("`") // 2 - 1 == len(REASON_CLASSES)  # and no other (the field's own name is one pair)
    assert {reason_class for _, reason_class, _ in BAD_TRANSACTIONS} <= set(REASON_CLASSES)


def test_every_fixture_is_in_the_table() -> None:
    on_disk = {p.name.removesuffix(".bad.json") for p in TESTDATA.glob("*.bad.json")}
    assert on_disk == {name for name, _, _ in BAD_TRANSACTIONS}


@pytest.mark.parametrize(("name", "reason_class", "message"), BAD_TRANSACTIONS)
def test_bad_transaction_is_rejected_with_its_reason(name: str, reason_class: str, message: str) -> None:
    with pytest.raises(EventError) as caught:
        decode_transaction((TESTDATA / f"{name}.bad.json").read_bytes())
    assert caught.value.reason_class == reason_class
    assert str(caught.value).startswith(message)


def test_amount_as_string_and_number_and_epoch_ms_agree() -> None:
    as_text = decode_transaction(
        b'{"txn_id":"t1","ts":"2026-01-01T00:00:00Z","payer_account":"A","payee_account":"B","amount":"1250.50"}'
    )
    as_number = decode_transaction(
        b'{"txn_id":"t1","ts":1767225600000,"payer_account":"A","payee_account":"B","amount":1250.5}'
    )
    assert as_text == as_number
    assert as_text.currency == "CNY"


def test_offsets_are_honoured() -> None:
    utc = decode_transaction(
        b'{"txn_id":"t","ts":"2026-01-01T00:00:00Z","payer_account":"A","payee_account":"B","amount":1}'
    )
    beijing = decode_transaction(
        b'{"txn_id":"t","ts":"2026-01-01T08:00:00+08:00","payer_account":"A","payee_account":"B","amount":1}'
    )
    assert utc.ts_ms == beijing.ts_ms


def test_call_without_duration_is_ongoing_and_risk_is_checked() -> None:
    call = decode_call(
        b'{"call_id":"c1","callee_phone":"+861","caller_number":"+4420","started_at":1767225600000,'
        b'"caller_risk":"overseas"}'
    )
    assert call.duration_s is None and call.caller_risk == "overseas"
    with pytest.raises(EventError, match="field 'caller_risk': expected one of flagged, normal, overseas, virtual"):
        decode_call(
            b'{"call_id":"c1","callee_phone":"+861","caller_number":"+4420","started_at":1767225600000,'
            b'"caller_risk":"scary"}'
        )
    with pytest.raises(EventError, match="field 'duration_s': must be >= 0 seconds"):
        decode_call(
            b'{"call_id":"c1","callee_phone":"+861","caller_number":"x","started_at":1767225600000,'
            b'"caller_risk":"normal","duration_s":-1}'
        )


def test_label_needs_an_account_or_a_transaction() -> None:
    assert decode_label(b'{"account":"M1","verdict":"fraud","role":"mule"}').role == "mule"
    with pytest.raises(EventError, match="needs txn_id or account"):
        decode_label(b'{"verdict":"fraud"}')
    with pytest.raises(EventError, match="field 'verdict': expected one of fraud, legit, suspected, found 'maybe'"):
        decode_label(b'{"txn_id":"t1","verdict":"maybe"}')

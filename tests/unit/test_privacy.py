"""Personal data never reaches a log line or a metric label in full; the dead-letter record keeps the original.

Personal: account numbers, phone numbers, device ids, IP addresses. Each test sends messages carrying
recognisable values through the code that logs them (the worker's agent and side-input tasks, with Kafka
replaced by fakes) and reads what an operator would read.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from prometheus_client import CollectorRegistry

import streams.app
from streams.errors import EventError
from streams.events import decode_call, decode_label, decode_transaction, decode_verification
from streams.metrics import Metrics
from streams.outputs import RawRecord, Reason, Verdict
from streams.pipeline import TransactionPipeline
from streams.privacy import mask, redact
from streams.settings import Settings

ACCOUNT = "6222020000009999"
PAYEE = "6222021111118888"
PHONE = "+8613812345678"
DEVICE = "device-7f3a9c2e1b"
IP = "203.0.113.77"
PERSONAL = (ACCOUNT, PAYEE, PHONE, DEVICE, IP)
TS = "2026-03-01T10:00:00+08:00"
GOOD = {
    "txn_id": "t-good",
    "ts": TS,
    "payer_account": ACCOUNT,
    "payee_account": PAYEE,
    "amount": "25000.00",
    "channel": "mobile",
    "payer_phone": PHONE,
    "device_id": DEVICE,
    "ip": IP,
}


def leaked(text: str) -> list[str]:
    return [value for value in PERSONAL if value in text]


# Broken transactions, each carrying personal values: in their own fields with a wrong type, too long or
# empty, in a field where they do not belong (a feed that shifted its columns), or in a message that is not JSON.
BAD_TRANSACTIONS = {
    "account as a number": {**GOOD, "payer_account": int(ACCOUNT)},
    "payee account too long": {**GOOD, "payee_account": PAYEE * 9},
    "phone as a number": {**GOOD, "payer_phone": int(PHONE)},
    "phone too long": {**GOOD, "payer_phone": PHONE * 10},
    "device id as a list": {**GOOD, "device_id": [DEVICE]},
    "device id too long": {**GOOD, "device_id": DEVICE * 8},
    "ip as an object": {**GOOD, "ip": {"v4": IP}},
    "ip too long": {**GOOD, "ip": IP * 11},
    "account in channel": {**GOOD, "channel": ACCOUNT},
    "phone in currency": {**GOOD, "currency": PHONE},
    "phone in ts": {**GOOD, "ts": PHONE},
    "ip in an account opening date": {**GOOD, "payer_account_opened": IP},
    "account in amount": {**GOOD, "amount": f"{ACCOUNT} CNY"},
    "empty payer account": {**GOOD, "payer_account": " "},
}
NOT_JSON = {
    "cut short": orjson.dumps(GOOD)[:-20],
    "not UTF-8": orjson.dumps(GOOD).replace(b"mobile", b"mob\xffle"),
    "an array": orjson.dumps([GOOD]),
}


def transaction_records() -> list[RawRecord]:
    values = [orjson.dumps(m) for m in BAD_TRANSACTIONS.values()] + list(NOT_JSON.values())
    return [RawRecord(v, "transactions", 0, i, 1_772_330_400_000, ACCOUNT.encode()) for i, v in enumerate(values)]


def test_mask_keeps_the_last_four_characters_and_redact_finds_numbers_and_ips_in_text() -> None:
    assert [mask(v) for v in (ACCOUNT, PHONE, DEVICE, IP)] == [
        "************9999",
        "**********5678",
        "*************2e1b",
        "********3.77",
    ]
    assert redact(f"paid {PAYEE} from {IP}, call {PHONE} at 2026-03-01 10:00, txn t-42") == (
        "paid ************8888 from ********3.77, call **********5678 at 2026-03-01 10:00, txn t-42"
    )


@pytest.mark.parametrize("name", sorted(BAD_TRANSACTIONS))
def test_an_event_error_never_quotes_a_personal_value(name: str) -> None:
    with pytest.raises(EventError) as caught:
        decode_transaction(orjson.dumps(BAD_TRANSACTIONS[name]))
    assert leaked(str(caught.value)) == []


def test_a_personal_value_in_the_wrong_field_is_quoted_masked() -> None:
    with pytest.raises(EventError, match=r"found '\*{12}9999'$"):
        decode_transaction(orjson.dumps(BAD_TRANSACTIONS["account in channel"]))
    with pytest.raises(EventError, match=r"found '\*{10}5678'$"):
        decode_transaction(orjson.dumps(BAD_TRANSACTIONS["phone in ts"]))


def test_side_input_and_verification_errors_never_quote_a_personal_value() -> None:
    call = {"call_id": "c1", "callee_phone": PHONE, "caller_number": PHONE, "started_at": TS, "caller_risk": "virtual"}
    label = {"account": ACCOUNT, "verdict": "fraud", "role": "mule"}
    verification = {"verification_id": "v1", "txn_id": "t1", "payer_account": ACCOUNT, "outcome": "confirmed", "ts": TS}
    broken = [
        (decode_call, {**call, "callee_phone": int(PHONE)}),
        (decode_call, {**call, "caller_number": PHONE * 10}),
        (decode_call, {**call, "caller_risk": PHONE}),
        (decode_label, {**label, "account": int(ACCOUNT)}),
        (decode_label, {**label, "verdict": ACCOUNT}),
        (decode_label, {**label, "role": IP}),
        (decode_verification, {**verification, "payer_account": ACCOUNT * 9}),
        (decode_verification, {**verification, "outcome": ACCOUNT}),
    ]
    for decode, message in broken:
        with pytest.raises(EventError) as caught:
            decode(orjson.dumps(message))
        assert leaked(str(caught.value)) == [], str(caught.value)


def test_dead_letter_records_keep_the_original_bytes_but_not_in_their_reason() -> None:
    records = transaction_records()
    out = TransactionPipeline(AllowAll()).process(records, now_ms=1_772_330_400_000)
    letters = [orjson.loads(m.value) for m in out.messages if m.topic == "dead-letters"]
    assert len(letters) == len(records)
    for record, letter in zip(records, letters, strict=True):
        assert base64.b64decode(letter["original_b64"]) == record.value  # to fix and replay
        assert leaked(letter["reason"]) == [], letter["reason"]


# --- the worker's own log lines, from its Faust agent and side-input tasks ------------------------------------


class AllowAll:
    version = "t"
    tags: dict[str, tuple[str, ...]] = {}  # noqa: RUF012 - read-only

    def score(self, transactions, features):
        return [
            Verdict("hold", 60.0, (Reason("big", 60.0, "big transfer", {"amount": t.amount}),)) for t in transactions
        ]


class FakeOutput:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, messages) -> None:
        self.sent.extend((m.topic, m.key, m.value) for m in messages)

    async def delivered(self) -> None:
        pass


def run_worker_once(tmp_path: Path, monkeypatch, side_inputs: dict[str, list[bytes]], transactions: list[RawRecord]):
    """Build the worker's service, feed its side-input readers and one batch of transactions; Kafka is faked."""

    async def follow(topic, lookback_ms, apply, on_dead_letter, client_config, ready=None):
        for offset, value in enumerate(side_inputs[topic]):
            record = RawRecord(value, topic, 0, offset, 1_772_330_400_000, ACCOUNT.encode())
            try:
                apply(record)
            except EventError as error:
                await on_dead_letter(record, error)
        if ready is not None:
            ready.set()

    monkeypatch.setattr(streams.app, "follow", follow)
    settings = Settings(data_dir=str(tmp_path), metrics_port=0)
    registry = CollectorRegistry()
    output = FakeOutput()

    async def run() -> None:
        interceptor = streams.app.Interceptor(
            settings, TransactionPipeline(AllowAll()), Metrics(registry), output=output, consumer=object()
        )
        await interceptor._follow("calls", 0, interceptor.apply_call)
        await interceptor._follow("labels", 0, interceptor.apply_label)
        await interceptor.handle(transactions)

    asyncio.run(run())
    return output, registry


def test_the_worker_logs_dead_letters_and_mule_list_changes_with_personal_data_masked(
    tmp_path: Path, monkeypatch, caplog
) -> None:
    calls = [
        orjson.dumps(
            {"call_id": "c1", "callee_phone": PHONE, "caller_number": PHONE, "started_at": TS, "caller_risk": IP}
        ),
        orjson.dumps(
            {
                "call_id": "c2",
                "callee_phone": int(PHONE),
                "caller_number": "x",
                "started_at": TS,
                "caller_risk": "normal",
            }
        ),
    ]
    labels = [
        orjson.dumps(
            {
                "account": PAYEE,
                "verdict": "fraud",
                "role": "mule",
                "source": f"investigator at {IP}",
                "reason": f"victim {ACCOUNT} was called from {PHONE} and paid {PAYEE}",
            }
        ),
        orjson.dumps({"account": ACCOUNT, "verdict": PHONE}),
    ]
    transactions = [*transaction_records(), RawRecord(orjson.dumps(GOOD), "transactions", 0, 99, 1_772_330_400_000)]
    with caplog.at_level(logging.INFO, logger="streams"):
        producer, registry = run_worker_once(tmp_path, monkeypatch, {"calls": calls, "labels": labels}, transactions)

    lines = [r.getMessage() for r in caplog.records]
    assert sum("dead letter" in line for line in lines) == 3 + len(transactions) - 1
    assert [line for line in lines if leaked(line)] == []
    assert (
        "mule list: listed ************8888 (verdict fraud, source investigator at ********3.77, reason "
        "'victim ************9999 was called from **********5678 and paid ************8888')" in lines
    )

    # what the worker produced: decisions carry no personal data but a held transfer's payee (the hold needs it
    # to report a mule, and case management to call the bank), dead letters keep the original bytes
    decisions = [orjson.loads(value) for topic, _, value in producer.sent if topic == "decisions"]
    assert len(decisions) == 1
    hold = decisions[0].pop("hold")
    assert hold is None or hold["payee_account"] == PAYEE
    assert leaked(orjson.dumps(decisions[0]).decode()) == []
    letters = [orjson.loads(value) for topic, _, value in producer.sent if topic == "dead-letters"]
    originals = {base64.b64decode(letter["original_b64"]) for letter in letters}
    assert {calls[1], labels[1], *(r.value for r in transactions[:-1])} <= originals
    assert [letter["reason"] for letter in letters if leaked(letter["reason"])] == []

    # and no metric label carries any of it
    label_values = [v for family in registry.collect() for s in family.samples for v in s.labels.values()]
    assert [v for v in label_values if leaked(v) or any(mask(p) in v for p in PERSONAL)] == []
    assert "mobile" in label_values and "listed" in label_values  # the labels were collected at all


def test_dead_letters_export_writes_the_original_and_prints_the_reason_masked(tmp_path: Path, monkeypatch) -> None:
    import kafka
    from click.testing import CliRunner

    from streams.cli.main import main

    original = orjson.dumps({**GOOD, "channel": ACCOUNT})
    old_style = {  # written by a worker from before reasons were masked
        "original_b64": base64.b64encode(original).decode(),
        "topic": "transactions",
        "partition": 3,
        "offset": 17,
        "reason": f"field 'channel': expected one of atm, counter, mobile, online, pos, third_party, found '{ACCOUNT}'",
        "reason_class": "invalid_field",
        "field": "channel",
    }

    class Consumer:
        def __init__(self, *topics, **config) -> None:
            pass

        def __iter__(self):
            return iter([SimpleNamespace(value=orjson.dumps(old_style))])

        def close(self) -> None:
            pass

    monkeypatch.setattr(kafka, "KafkaConsumer", Consumer)
    monkeypatch.setattr("streams.kafka_security.check_connection", lambda settings: None)  # no broker here
    monkeypatch.setattr("streams.cli.io.require_topic", lambda settings, name: settings.topic(name))
    out = tmp_path / "rejected.jsonl"
    result = CliRunner().invoke(main, ["dead-letters", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == original + b"\n"
    assert result.stderr == (
        "transactions:3:17: field 'channel': expected one of atm, counter, mobile, online, pos, third_party, "
        "found '************9999'\nexported 1 messages to " + str(out) + "\n"
    )

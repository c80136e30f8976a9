"""Fuzzing with hypothesis: the decoder and the rule compiler only ever answer with their own errors."""

from __future__ import annotations

import json
import string
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.errors import RuleError
from rules.features import REGISTRY
from rules.parser import ParseError, parse
from rules.ruleset import load_ruleset
from streams.errors import EventError
from streams.events import (
    MAX_AMOUNT,
    MAX_TS_MS,
    MIN_TS_MS,
    _plain_transaction,
    _transaction,
    decode_call,
    decode_label,
    decode_transaction,
)

ROOT = Path(__file__).resolve().parents[2]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20,
)
FIELDS = ["txn_id", "ts", "payer_account", "payee_account", "amount", "currency", "channel", "payer_phone",
          "device_id", "payer_account_opened", "call_id", "callee_phone", "caller_number", "started_at",
          "duration_s", "caller_risk", "verdict", "account", "role"]  # fmt: skip


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")  # big integers too


NEAR_VALID = st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=len(FIELDS))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=300) | JSON.map(_dumps) | NEAR_VALID.map(_dumps))
def test_decoders_accept_or_reject_with_an_event_error_only(raw: bytes) -> None:
    for decode in (decode_transaction, decode_call, decode_label):
        try:
            decode(raw)
        except EventError as error:
            assert str(error) and error.reason_class


EXPRESSION_TEXT = st.text(
    alphabet=string.ascii_letters + string.digits + " ._'\"()[]<>=!+-*/,\n\t", max_size=80
) | st.lists(
    st.sampled_from([*REGISTRY.names, "and", "or", "not", "in", "between", "(", ")", "[", "]", ",", "<", ">=", "==",
                     "+", "/", "-", "5", "0", "'mobile'", "'x'", "true"]),
    max_size=14,
).map(" ".join)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(text=EXPRESSION_TEXT)
def test_the_parser_answers_random_text_with_a_parse_error_or_a_tree(text: str) -> None:
    try:
        parse(text)
    except ParseError as error:
        assert 0 <= error.pos <= len(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(when=EXPRESSION_TEXT, extra=st.text(max_size=60))
def test_the_compiler_answers_random_rules_with_a_rule_error_or_a_ruleset(
    tmp_path_factory, when: str, extra: str
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "r.yaml"
    path.write_text(
        'ruleset: {version: "f", thresholds: {review: 1, hold: 2, block: 3}}\n'
        f"rules:\n  - id: r\n    description: d\n    score: 1\n    when: {orjson.dumps(when).decode()}\n{extra}\n"
    )
    try:
        load_ruleset(path)
    except RuleError as error:
        assert error.problems and all(p.line >= 1 and p.column >= 1 for p in error.problems)


EDGE_VALUES = {
    "txn_id": st.sampled_from(["t1", "", " ", "\t\n", "x" * 128, "x" * 129, "é"]) | JSON,
    "ts": st.sampled_from(
        [MIN_TS_MS - 1, MIN_TS_MS, MAX_TS_MS - 1, MAX_TS_MS, True, 1_772_330_400, "2026-03-01T08:30:00Z"]
    )
    | JSON,
    "payer_account": st.sampled_from(["A", "", " ", "x" * 129]) | JSON,
    "payee_account": st.sampled_from(["B", "x" * 128]) | JSON,
    "amount": st.sampled_from(
        [
            0,
            -1,
            0.0,
            1e-9,
            12.5,
            100,
            MAX_AMOUNT,
            MAX_AMOUNT * 1.01,
            True,
            "12.50",
            "12,50",
            "0",
            "0.00",
            "1e3",
            " 1",
            "9" * 15,
            "9" * 16,
            "1." + "5" * 6,
            "1." + "5" * 7,
            "1.",
            ".5",
            "1.2.3",
            "+1",
            "\u0661\u0662",  # Arabic-Indic digits: str.isdigit() says yes
            "\u00b2",  # superscript two: str.isdigit() says yes
        ]
    )
    | JSON,
    "currency": st.sampled_from(["CNY", "USD", "cny", "", "XXX"]) | JSON,
    "channel": st.sampled_from(["pos", "online", "POS", ""]) | JSON,
    "payer_phone": st.sampled_from(["+8613800000001", "x" * 129]) | JSON,
    "device_id": JSON,
    "ip": JSON,
    "payee_bank": JSON,
    "payer_account_opened": st.sampled_from(["2021-03-12", "20210312", "31/05/2024", ""]) | JSON,
    "payee_account_opened": st.sampled_from(["2024-02-29", "2023-02-29"]) | JSON,
}
VALID = {"txn_id": "t1", "ts": 1_772_330_400_000, "payer_account": "A", "payee_account": "B", "amount": "12.50",
         "currency": "CNY", "channel": "pos", "payer_phone": "+8613800000001", "device_id": "d1", "ip": "10.0.0.1",
         "payee_bank": "ICBC", "payer_account_opened": "2021-03-12", "payee_account_opened": "2024-02-29"}  # fmt: skip


@st.composite
def transaction_like(draw: st.DrawFn) -> dict:
    """A valid transaction with up to three fields changed to an edge value or left out."""
    obj = dict(VALID)
    for name in draw(st.lists(st.sampled_from(list(EDGE_VALUES)), max_size=3, unique=True)):
        if draw(st.integers(0, 4)) == 0:
            del obj[name]
        else:
            obj[name] = draw(EDGE_VALUES[name])
    return obj


@settings(max_examples=1500, deadline=None)
@given(obj=transaction_like())
def test_the_fast_decoder_agrees_with_the_field_readers_wherever_it_answers(obj: dict) -> None:
    # the worker decodes the common case in one pass (events._plain_transaction); anything else goes through the
    # field readers, which name the problem. Where the fast path answers, the readers must give the same record;
    # a date it cannot read must be the same error.
    raw = _dumps(obj)
    try:
        slow = _transaction(orjson.loads(raw))
    except EventError as error:
        slow = error
    try:
        fast = _plain_transaction(orjson.loads(raw))
    except EventError as error:
        assert isinstance(slow, EventError)
        assert str(error) == str(slow)
        return
    if fast is not None:
        assert fast == slow
        assert [type(v) for v in fast] == [type(v) for v in slow]  # 100 and 100.0 are equal, not the same


def test_a_bank_feed_takes_the_fast_path() -> None:
    lines = (ROOT / "examples" / "demo-transactions.jsonl").read_bytes().splitlines()
    valid = []
    for line in lines:
        try:
            decode_transaction(line)
        except EventError:
            continue  # the demo's broken transaction
        valid.append(orjson.loads(line))
    assert len(valid) == len(lines) - 1
    assert all(_plain_transaction(t) is not None for t in valid)

"""Fuzzing with hypothesis: the decoder and the rule compiler only ever answer with their own errors."""

from __future__ import annotations

import json
import string

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.errors import RuleError
from rules.features import REGISTRY
from rules.parser import ParseError, parse
from rules.ruleset import load_ruleset
from streams.errors import EventError
from streams.events import decode_call, decode_label, decode_transaction

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

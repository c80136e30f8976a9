"""The event contract (docs/events.md): decode and validate every message the worker reads, in one place.

Each `decode_*` function takes the raw Kafka value (bytes) and returns a typed record, or raises `EventError`
naming the field and the reason. Callers never look at raw JSON themselves.

>>> decode_transaction(b'{"txn_id":"t1","ts":"2026-01-01T08:00:00Z","payer_account":"A",'
...                    b'"payee_account":"B","amount":"12.50"}').amount
12.5
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

import orjson

from streams.currencies import ISO_4217
from streams.errors import EventError
from streams.privacy import redact

CHANNELS = frozenset({"mobile", "online", "atm", "counter", "pos", "third_party"})
CALLER_RISKS = ("normal", "overseas", "virtual", "flagged")  # ordered from least to most risky
VERDICTS = frozenset({"fraud", "legit", "suspected"})  # suspected: a report, not a confirmed verdict
ROLES = frozenset({"victim", "mule"})
# what closes a hold: the customer confirms the payment, the customer reports fraud, or an investigator decides
VERIFICATION_OUTCOMES = frozenset({"confirmed", "fraud_reported", "investigator_release", "investigator_block"})

MAX_MESSAGE_BYTES = 64 * 1024
MAX_AMOUNT = 1e11  # larger than any single retail transfer; beyond it the feed is broken, not rich
MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 1024  # free-text fields (a label's or verification's reason)
# Event times outside these bounds are feed bugs (seconds sent as milliseconds, zeroed clocks).
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
_DECIMAL = re.compile(r"[0-9]{1,15}(\.[0-9]{1,6})?")
_SIGNED_DECIMAL = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]+))?")  # to say what is wrong with one _DECIMAL refused
_MAX_AMOUNT_SHOWN = f"{MAX_AMOUNT:,.0f}"  # grouped: a run of 12 digits would be masked as an account number


class Transaction(NamedTuple):  # a tuple: immutable, and made 6 times faster than a frozen dataclass
    txn_id: str
    ts_ms: int
    payer_account: str
    payee_account: str
    amount: float
    currency: str = "CNY"
    channel: str | None = None
    payer_phone: str | None = None
    device_id: str | None = None
    ip: str | None = None
    payee_bank: str | None = None
    payer_account_opened: date | None = None
    payee_account_opened: date | None = None


def is_bank_customer(opened: date | str | None) -> bool:
    """Whether an account is one of the bank's own, from the opening date a transaction was sent with for it
    (`payer_account_opened`, `payee_account_opened`; decoded, or the raw JSON value: empty counts as not sent).

    A bank knows the opening date of its own accounts only, and the simulator marks the bank's customers this way
    (streams/simulator/population.py). A real feed that sends other banks' opening dates, or none, needs an
    explicit flag instead, read here."""
    return bool(opened)


@dataclass(frozen=True, slots=True)
class Call:
    call_id: str
    callee_phone: str
    caller_number: str
    started_ms: int
    caller_risk: str
    duration_s: float | None = None  # None: the call is still going on


@dataclass(frozen=True, slots=True)
class Label:
    verdict: str
    txn_id: str | None = None
    account: str | None = None
    role: str | None = None
    reason: str | None = None  # why, for the audit trail of the mule list
    source: str | None = None  # who says so, e.g. "investigator", "verification"


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of the bank's call to a customer (or an investigator's decision) about a held transfer."""

    verification_id: str
    txn_id: str
    payer_account: str
    outcome: str
    ts_ms: int
    reason: str | None = None


def decode_transaction(raw: bytes) -> Transaction:
    obj = _load_object(raw)
    return _plain_transaction(obj) or _transaction(obj)


def _plain_transaction(obj: dict[str, Any]) -> Transaction | None:
    """The common case in one pass, without the field readers' calls (a third of the worker's time went into
    decoding): every field present with its plain JSON type and within its limits. None sends the object
    through `_transaction`, which accepts the rest (RFC 3339 times) or names what is wrong;
    tests/unit/test_fuzz.py checks that both agree wherever this one answers. The checks are written out, not
    called: a function call per field was a fifth of this function's time."""
    get = obj.get
    txn_id, payer, payee, ts, amount = (
        get("txn_id"),
        get("payer_account"),
        get("payee_account"),
        get("ts"),
        get("amount"),
    )
    if not (
        type(txn_id) is str
        and type(payer) is str
        and type(payee) is str
        and 0 < len(txn_id) <= MAX_ID_LENGTH
        and 0 < len(payer) <= MAX_ID_LENGTH
        and 0 < len(payee) <= MAX_ID_LENGTH
        and not (txn_id.isspace() or payer.isspace() or payee.isspace())
    ):
        return None
    if type(ts) is not int or not MIN_TS_MS <= ts < MAX_TS_MS:
        return None
    if type(amount) is str:  # money as a decimal string, as the contract advises: _DECIMAL, without a regex
        units, dot, fraction = amount.partition(".")
        if (
            amount.isascii()
            and units.isdigit()
            and len(units) <= 15
            and (not dot or (fraction.isdigit() and len(fraction) <= 6))
        ):
            amount = float(amount)
    if (type(amount) is not float and type(amount) is not int) or not 0 < amount <= MAX_AMOUNT:  # NaN fails too
        return None
    currency, channel = get("currency"), get("channel")
    if currency is None:
        currency = "CNY"
    elif type(currency) is not str or currency not in ISO_4217:
        return None
    if channel is not None and (type(channel) is not str or channel not in CHANNELS):
        return None
    phone, device, ip, bank = get("payer_phone"), get("device_id"), get("ip"), get("payee_bank")
    for text in (phone, device, ip, bank):
        if text is not None and (type(text) is not str or len(text) > MAX_ID_LENGTH):
            return None
    opened_payer, opened_payee = get("payer_account_opened"), get("payee_account_opened")
    return _new_transaction(
        Transaction,
        (
            txn_id,
            ts,
            payer,
            payee,
            float(amount),
            currency,
            channel,
            phone,
            device,
            ip,
            bank,
            None if opened_payer is None else _iso_date(obj, "payer_account_opened"),
            None if opened_payee is None else _iso_date(obj, "payee_account_opened"),
        ),
    )


_new_transaction = tuple.__new__  # Transaction(...) without the named tuple's Python-level __new__


def _transaction(obj: dict[str, Any]) -> Transaction:
    return Transaction(
        txn_id=_identifier(obj, "txn_id"),
        ts_ms=_timestamp(obj, "ts"),
        payer_account=_identifier(obj, "payer_account"),
        payee_account=_identifier(obj, "payee_account"),
        amount=_amount(obj, "amount"),
        currency=_currency(obj, "currency"),
        channel=_choice(obj, "channel", CHANNELS, required=False),
        payer_phone=_optional_string(obj, "payer_phone"),
        device_id=_optional_string(obj, "device_id"),
        ip=_optional_string(obj, "ip"),
        payee_bank=_optional_string(obj, "payee_bank"),
        payer_account_opened=_iso_date(obj, "payer_account_opened"),
        payee_account_opened=_iso_date(obj, "payee_account_opened"),
    )


def decode_call(raw: bytes) -> Call:
    obj = _load_object(raw)
    duration = obj.get("duration_s")
    if duration is not None:
        duration = _number(duration, "duration_s")
        if duration < 0:
            raise EventError("duration_s", f"must be >= 0 seconds, got {_shown(duration)}")
    risk = _choice(obj, "caller_risk", frozenset(CALLER_RISKS), required=True)
    assert risk is not None
    return Call(
        call_id=_identifier(obj, "call_id"),
        callee_phone=_identifier(obj, "callee_phone"),
        caller_number=_identifier(obj, "caller_number"),
        started_ms=_timestamp(obj, "started_at"),
        caller_risk=risk,
        duration_s=duration,
    )


def decode_label(raw: bytes) -> Label:
    obj = _load_object(raw)
    txn_id = _optional_string(obj, "txn_id")
    account = _optional_string(obj, "account")
    if txn_id is None and account is None:
        raise EventError("txn_id", "a label needs txn_id or account (or both), found neither", "missing_field")
    verdict = _choice(obj, "verdict", VERDICTS, required=True)
    assert verdict is not None
    return Label(
        verdict=verdict,
        txn_id=txn_id,
        account=account,
        role=_choice(obj, "role", ROLES, required=False),
        reason=_optional_string(obj, "reason", MAX_TEXT_LENGTH),
        source=_optional_string(obj, "source"),
    )


def decode_verification(raw: bytes) -> Verification:
    obj = _load_object(raw)
    outcome = _choice(obj, "outcome", VERIFICATION_OUTCOMES, required=True)
    assert outcome is not None
    return Verification(
        verification_id=_identifier(obj, "verification_id"),
        txn_id=_identifier(obj, "txn_id"),
        payer_account=_identifier(obj, "payer_account"),
        outcome=outcome,
        ts_ms=_timestamp(obj, "ts"),
        reason=_optional_string(obj, "reason", MAX_TEXT_LENGTH),
    )


# --- field readers: each raises EventError(field, what was expected, what was found) -------------------------
# The message reaches the worker's log and the dead-letter reason. It never quotes a personal field (accounts,
# phones, device ids, IPs: only their type or length), and a value it quotes goes through `_shown`, in case a
# feed put personal data in the wrong field. The dead-letter record keeps the original bytes for the replay.


def _shown(value: Any) -> str:
    """A found value as an error message quotes it: text cut to 40 characters with personal-looking numbers and
    IPs masked. A JSON number is shown as it is: in a time or amount field it is that field's value in the wrong
    unit (seconds for milliseconds), which the operator needs to see; identifiers are text by contract."""
    if isinstance(value, str):
        return repr(redact(value)[:40])
    return repr(value)


def _load_object(raw: bytes) -> dict[str, Any]:
    if raw is None:
        raise EventError("", "message has no value (tombstone)", "invalid_json")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise EventError("", f"message is {len(raw)} bytes, the limit is {MAX_MESSAGE_BYTES}", "oversized")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if isinstance(exc.__cause__, UnicodeDecodeError) or "utf-8" in str(exc).lower():
            raise EventError("", f"message is not valid UTF-8: {exc}", "invalid_encoding") from None
        raise EventError("", f"message is not valid JSON: {exc}", "invalid_json") from None
    except RecursionError:
        raise EventError("", "message is nested too deeply", "invalid_json") from None
    if not isinstance(obj, dict):
        raise EventError("", f"expected a JSON object, found {_json_type(obj)}", "invalid_json")
    return obj


def _json_type(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _required(obj: dict[str, Any], field: str) -> Any:
    value = obj.get(field)
    if value is None:
        raise EventError(field, "is required", "missing_field")
    return value


def _identifier(obj: dict[str, Any], field: str) -> str:
    value = _required(obj, field)
    if not isinstance(value, str):
        raise EventError(field, f"expected a string, found {_json_type(value)}")
    if not value.strip():
        raise EventError(field, "must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise EventError(field, f"is {len(value)} characters, the limit is {MAX_ID_LENGTH}")
    return value


def _optional_string(obj: dict[str, Any], field: str, limit: int = MAX_ID_LENGTH) -> str | None:
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventError(field, f"expected a string or null, found {_json_type(value)}")
    if len(value) > limit:
        raise EventError(field, f"is {len(value)} characters, the limit is {limit}")
    return value


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventError(field, f"expected a number, found {_json_type(value)}")
    result = float(value)
    if not math.isfinite(result):
        raise EventError(field, f"must be a finite number, got {value!r}")
    return result


def _amount(obj: dict[str, Any], field: str) -> float:
    value = _required(obj, field)
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise EventError(field, _not_decimal(value))
        amount = float(value)
    else:
        amount = _number(value, field)
    if amount <= 0:
        raise EventError(field, f"must be > 0, got {_shown(value)}")
    if amount > MAX_AMOUNT:
        raise EventError(field, f"must be <= {_MAX_AMOUNT_SHOWN}, got {_shown(value)}")
    return amount


def _not_decimal(value: str) -> str:
    """What is wrong with an amount string that is not a plain decimal: the sign, the size, the decimals."""
    number = _SIGNED_DECIMAL.fullmatch(value)
    if number is None:
        return f"expected a decimal string like '1250.00', found {_shown(value)}"
    sign, whole, decimals = number.groups()
    if sign == "-" or float(value) == 0:
        return f"must be > 0, got {_shown(value)}"
    if len(whole.lstrip("0")) > 15 or float(value) > MAX_AMOUNT:
        return f"must be <= {_MAX_AMOUNT_SHOWN}, got {_shown(value)}"
    if decimals is not None and len(decimals) > 6:
        return f"has {len(decimals)} decimal places, at most 6: {_shown(value)}"
    return f"expected a decimal string like '1250.00', found {_shown(value)}"  # a '+': say how it is written


def _currency(obj: dict[str, Any], field: str) -> str:
    value = obj.get(field)
    if value is None:
        return "CNY"
    if not isinstance(value, str):
        raise EventError(field, f"expected an ISO 4217 code such as 'CNY', found {_json_type(value)}")
    if value not in ISO_4217:
        raise EventError(field, f"expected an ISO 4217 code such as 'CNY', found {_shown(value)}")
    return value


def _choice(obj: dict[str, Any], field: str, allowed: frozenset[str], *, required: bool) -> str | None:
    value = obj.get(field)
    if value is None:
        if required:
            raise EventError(field, f"is required (one of {', '.join(sorted(allowed))})", "missing_field")
        return None
    if not isinstance(value, str) or value not in allowed:
        found = _shown(value) if isinstance(value, str) else _json_type(value)
        raise EventError(field, f"expected one of {', '.join(sorted(allowed))}, found {found}")
    return value


def _timestamp(obj: dict[str, Any], field: str) -> int:
    return parse_time(_required(obj, field), field)


def parse_time(value: Any, field: str = "ts") -> int:
    """Epoch milliseconds of a contract time (RFC 3339 with offset, or epoch ms); EventError otherwise."""
    if isinstance(value, bool):
        raise EventError(field, "expected RFC 3339 text or epoch milliseconds, found a boolean")
    if isinstance(value, int):
        ts_ms = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise EventError(
                field, f"expected RFC 3339 like '2026-03-01T08:30:00+08:00', found {_shown(value)}"
            ) from None
        if parsed.tzinfo is None:
            raise EventError(field, f"RFC 3339 time needs an offset or 'Z', found {_shown(value)}")
        ts_ms = int(parsed.timestamp() * 1000)
    else:
        raise EventError(field, f"expected RFC 3339 text or epoch milliseconds, found {_json_type(value)}")
    if not MIN_TS_MS <= ts_ms < MAX_TS_MS:
        hint = " (epoch milliseconds expected; this looks like seconds)" if _looks_like_seconds(value) else ""
        raise EventError(
            field, f"must lie between 2000-01-01 and 2100-01-01, got {_shown(value)}{hint}", "out_of_range"
        )
    return ts_ms


def _looks_like_seconds(value: object) -> bool:
    return isinstance(value, int) and MIN_TS_MS // 1000 <= value < MAX_TS_MS // 1000


def _iso_date(obj: dict[str, Any], field: str) -> date | None:
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventError(field, f"expected an ISO date like '2024-05-31', found {_json_type(value)}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise EventError(field, f"expected an ISO date like '2024-05-31', found {_shown(value)}") from None

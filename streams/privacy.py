"""Personal data in logs: show only as much of an account or phone number as an operator needs to match it.

Personal here: account numbers, phone numbers, device ids and IP addresses. Logs and error messages that reach
logs (dead-letter reasons) show them only through `mask` (the last 4 characters); free text that may quote
them (a label's reason, a value found in the wrong field) goes through `redact`. The dead-letter *record*
keeps the original message bytes, so it can be fixed and replayed; decisions and metric labels carry none.
"""

from __future__ import annotations

import re

# What personal data looks like inside free text: a run of 7 or more digits (an account or phone number,
# optionally with a leading +) or an IPv4 address. Device ids have no shape to find; they are never quoted.
_LOOKS_PERSONAL = re.compile(r"\+?\d{7,}|(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")


def mask(value: str | None, keep: int = 4) -> str:
    """`6222020000009999` -> `************9999`; short values are masked whole.

    >>> mask("6222020000009999")
    '************9999'
    >>> mask("+8613800000000")
    '**********0000'
    >>> mask("1234")
    '****'
    """
    if not value:
        return ""
    if len(value) <= keep * 2:
        return "*" * len(value)
    return "*" * (len(value) - keep) + value[-keep:]


def redact(text: str) -> str:
    """Mask every account-like or phone-like number and IPv4 address in free text; the rest stays readable.

    >>> redact("customer +8613800000000 paid 6222020000009999 from 203.0.113.77 on 2026-03-01")
    'customer **********0000 paid ************9999 from ********3.77 on 2026-03-01'
    """
    return _LOOKS_PERSONAL.sub(lambda m: mask(m.group()), text)

"""Personal data in logs: show only as much of an account or phone number as an operator needs to match it."""

from __future__ import annotations


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

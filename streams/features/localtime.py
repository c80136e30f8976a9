"""Event times on the bank's wall clock: the hour of day in the bank's time zone (features `hour` and `night`).

The zone is a setting (`INTERCEPTOR_TIMEZONE`, `interceptor backtest --timezone`): an IANA name, whose daylight
saving time is followed, or a fixed offset from UTC. A batch's hours take one offset for the whole batch unless
the zone's offset changes within it (twice a year in zones with daylight saving time), when each transaction
gets its own.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from streams.features.layout import DAY_MS, HOUR_MS

DEFAULT_ZONE = "+08:00"  # the simulated bank's (streams/simulator/population.py)
_OFFSET = re.compile(r"([+-])(\d\d):(\d\d)")


def parse_zone(text: str) -> tzinfo:
    """An IANA time zone name (Europe/London) or an offset from UTC (+08:00, -03:30). Raises ValueError saying
    what is wrong."""
    offset = _OFFSET.fullmatch(text)
    if offset is not None:
        sign, hours, minutes = offset.group(1), int(offset.group(2)), int(offset.group(3))
        if hours > 14 or minutes > 59 or (hours == 14 and minutes > 0):
            raise ValueError(f"offset {text!r} is out of range: from -14:00 to +14:00")
        return timezone((-1 if sign == "-" else 1) * timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of the database, e.g. "Europe"
        raise ValueError(
            f"unknown time zone {text!r}: give an IANA name such as Europe/London or an offset such as +08:00"
        ) from None


DEFAULT_TZ = parse_zone(DEFAULT_ZONE)


def _offset_ms(zone: tzinfo, ts_ms: int) -> int:
    offset = datetime.fromtimestamp(ts_ms / 1000, tz=zone).utcoffset()
    assert offset is not None  # an aware datetime
    return int(offset.total_seconds() * 1000)


def local_hours(ts: np.ndarray, zone: tzinfo) -> np.ndarray:
    """Hour of day (0-23) of each event time (epoch ms) in `zone`."""
    if len(ts) == 0:
        return np.zeros(0, np.int64)
    first, last = int(ts.min()), int(ts.max())
    offset = _offset_ms(zone, first)
    # no zone changes its offset twice within a day: the same offset at both ends of a shorter span holds between
    if last - first < DAY_MS and _offset_ms(zone, last) == offset:
        return ((ts + offset) // HOUR_MS) % 24
    offsets = np.fromiter((_offset_ms(zone, int(t)) for t in ts), np.int64, len(ts))
    return ((ts + offsets) // HOUR_MS) % 24

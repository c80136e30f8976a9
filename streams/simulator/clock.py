"""The simulated bank's wall clock: its customers live by local time in the bank's time zone (shop hours, night
shifts, a thief at night), so the simulator draws local times and turns them into event times here.

An IANA zone's daylight saving time is followed: a night-shift worker's 23:00 stays 23:00 local across the
change, and the day of the change is 23 or 25 hours long. A local time that the change skips (01:30 on the
morning London's clocks go forward) is read with the offset before the change, so it lands an hour later on the
clock (02:30); one that happens twice (01:30 on the morning they go back) is the first of the two.

>>> clock = BankClock(ZoneInfo("Europe/London"), dt.date(2026, 3, 28))  # the clocks go forward on the 29th
>>> (clock.at(1, 23 * 3_600_000) - clock.at(0, 23 * 3_600_000)) / 3_600_000  # 23:00 to 23:00: 23 hours
23.0
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from datetime import tzinfo

from streams.features.layout import DAY_MS

_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_DAY = _EPOCH.toordinal()


@dataclass(frozen=True, slots=True)
class BankClock:
    """Local times in `zone`, counted in days from the feed's first day."""

    zone: tzinfo
    first_day: dt.date

    def at(self, day: int, wall_ms: int) -> int:
        """The event time (epoch ms) `wall_ms` after local midnight of the `day`-th day (0: the first); a
        `wall_ms` beyond 24 hours, or below 0, runs on into the following or previous days."""
        local_ms = (self.first_day.toordinal() - _EPOCH_DAY + day) * DAY_MS + wall_ms
        return local_ms - _offset_ms(self.zone, local_ms)

    def date(self, day: int) -> str:
        """The ISO date of the `day`-th day (negative: before the first)."""
        return (self.first_day + dt.timedelta(days=day)).isoformat()


def _offset_ms(zone: tzinfo, local_ms: int) -> int:
    """The zone's offset from UTC at a local time (ms since 1970-01-01 00:00 on the local clock)."""
    at_midnight, at_next = _day_offsets(zone, local_ms // DAY_MS)
    # no zone changes its offset twice within a day: the same offset at both midnights holds between
    return at_midnight if at_midnight == at_next else _wall_offset_ms(zone, local_ms)


@functools.lru_cache(maxsize=4096)
def _day_offsets(zone: tzinfo, local_day: int) -> tuple[int, int]:
    return _wall_offset_ms(zone, local_day * DAY_MS), _wall_offset_ms(zone, (local_day + 1) * DAY_MS)


def _wall_offset_ms(zone: tzinfo, local_ms: int) -> int:
    wall = (_EPOCH + dt.timedelta(milliseconds=local_ms)).replace(tzinfo=zone)  # fold 0: the earlier reading
    offset = wall.utcoffset()
    assert offset is not None  # an aware datetime
    return offset // dt.timedelta(milliseconds=1)

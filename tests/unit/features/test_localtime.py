"""The bank's time zone: the hour and night features follow its wall clock, daylight saving time included."""

from datetime import UTC, datetime

import numpy as np
import pytest

from rules.features import REGISTRY
from streams.errors import SettingsError
from streams.events import Transaction
from streams.features.engine import FeatureConfig, FeatureEngine
from streams.features.localtime import local_hours, parse_zone
from streams.settings import Settings


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# Europe/London moves from GMT to BST at 2026-03-29 01:00 UTC, and back at 2026-10-25 01:00 UTC
SPRING = [ms("2026-03-29T00:30:00"), ms("2026-03-29T00:59:59.999"), ms("2026-03-29T01:00:00"), ms("2026-03-29T01:30")]


def test_hours_follow_daylight_saving_time_within_one_batch() -> None:
    london = parse_zone("Europe/London")
    assert local_hours(np.array(SPRING), london).tolist() == [0, 0, 2, 2]  # 01:00 local never happens
    autumn = [ms("2026-10-25T00:30:00"), ms("2026-10-25T01:30:00"), ms("2026-10-25T02:30:00")]
    assert local_hours(np.array(autumn), london).tolist() == [1, 1, 2]  # 01:xx local happens twice
    summer = [ms("2026-07-01T22:59:00"), ms("2026-07-01T23:00:00")]
    assert local_hours(np.array(summer), london).tolist() == [23, 0]


def test_fixed_offsets_and_the_default() -> None:
    noon_utc = np.array([ms("2026-03-01T12:00:00")])
    assert local_hours(noon_utc, parse_zone("+08:00")).tolist() == [20]
    assert local_hours(noon_utc, parse_zone("-03:30")).tolist() == [8]
    assert local_hours(noon_utc, FeatureConfig().zone).tolist() == [20]  # the simulated bank's UTC+8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Europe/Londn", "unknown time zone 'Europe/Londn'"),
        ("Europe", "unknown time zone 'Europe'"),  # a folder of the zone database
        ("+15:00", "out of range"),
        ("+14:30", "out of range"),
        ("", "unknown time zone"),
    ],
)
def test_a_wrong_zone_is_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_zone(text)
    with pytest.raises(SettingsError, match=f"INTERCEPTOR_TIMEZONE: .*{message}"):
        Settings.from_env({"INTERCEPTOR_TIMEZONE": text})


def test_the_engine_s_night_is_the_bank_s_night() -> None:
    """A transfer at 23:30 UTC is at night in London (00:30 BST), in the morning at UTC+8, in the evening in New
    York."""
    txn = Transaction("t1", ms("2026-07-01T23:30:00"), "A", "B", 100.0)
    hour, night = REGISTRY.column("hour"), REGISTRY.column("night")
    for zone, want_hour, want_night in (("+08:00", 7, 0.0), ("Europe/London", 0, 1.0), ("America/New_York", 19, 0.0)):
        row = FeatureEngine(FeatureConfig(zone=parse_zone(zone))).process([txn])[0]
        assert (row[hour], row[night]) == (want_hour, want_night), zone

from datetime import UTC, date, datetime
from types import MappingProxyType

import pytest

from ivr.schedule import Schedule, parse_intervals

NINE_TO_SIX = parse_intervals("09:00-18:00")


def representative() -> Schedule:
    weekly = MappingProxyType({d: NINE_TO_SIX for d in range(5)})
    return Schedule("rep", "Europe/Moscow", weekly, country="RU", moved_workday=NINE_TO_SIX)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        (utc(2021, 3, 1, 5, 59, 59), False),  # 08:59:59 Moscow, Monday
        (utc(2021, 3, 1, 6, 0, 0), True),  # 09:00 Moscow
        (utc(2021, 3, 1, 14, 59, 59), True),  # 17:59:59 Moscow
        (utc(2021, 3, 1, 15, 0, 0), False),  # 18:00 Moscow: closed
        (utc(2021, 3, 6, 10, 0, 0), False),  # Saturday
        (utc(2021, 2, 23, 10, 0, 0), False),  # Defender of the Fatherland Day, a Tuesday
        (utc(2021, 2, 22, 10, 0, 0), False),  # Monday made a day off
        (utc(2021, 2, 20, 10, 0, 0), True),  # Saturday made a working day
        (utc(2021, 11, 5, 10, 0, 0), False),  # moved day off after 4 November
    ],
)
def test_representative_hours_follow_the_russian_production_calendar(moment: datetime, is_open: bool) -> None:
    assert representative().is_open(moment) is is_open


def test_next_opening_skips_weekend_and_holidays() -> None:
    # Friday 19 February 2021, 19:00 Moscow: next working day is the moved Saturday 20 February.
    opening = representative().next_opening(utc(2021, 2, 19, 16, 0, 0))
    assert opening is not None and opening.date() == date(2021, 2, 20) and opening.hour == 9
    # Saturday 20 February 19:00: Sunday, the Monday off and the holiday on Tuesday are skipped.
    opening = representative().next_opening(utc(2021, 2, 20, 16, 0, 0))
    assert opening is not None and opening.date() == date(2021, 2, 24)


def test_next_opening_inside_hours_is_the_next_day() -> None:
    opening = representative().next_opening(utc(2021, 3, 1, 7, 0, 0))
    assert opening is not None and opening.date() == date(2021, 3, 2)


def test_explicit_closed_and_working_days_win_over_the_calendar() -> None:
    weekly = MappingProxyType({d: NINE_TO_SIX for d in range(5)})
    schedule = Schedule("x", "Europe/Moscow", weekly, country="RU", closed_on=frozenset({date(2021, 3, 2)}),
                        working_on=frozenset({date(2021, 3, 7)}), moved_workday=NINE_TO_SIX)  # fmt: skip
    assert not schedule.is_open(utc(2021, 3, 2, 8, 0, 0))
    assert schedule.is_open(utc(2021, 3, 7, 8, 0, 0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("18:00-09:00", "ends before it starts"),
        (["09:00-13:00", "12:00-18:00"], "overlap"),
        ("9 to 6", "not an interval"),
        ("09:00-25:00", "not a time of day"),
    ],
)
def test_bad_intervals_are_refused(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_intervals(text)


def test_several_intervals_a_day_are_allowed() -> None:
    lunch = parse_intervals(["14:00-18:00", "09:00-13:00"])
    assert [str(i) for i in lunch] == ["09:00-13:00", "14:00-18:00"]

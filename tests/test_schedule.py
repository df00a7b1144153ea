from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType

import pytest

from ivr.flow.schedule import Schedule, parse_intervals

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
    schedule = Schedule(
        "x",
        "Europe/Moscow",
        weekly,
        country="RU",
        closed_on=frozenset({date(2021, 3, 2)}),
        working_on=frozenset({date(2021, 3, 7)}),
        moved_workday=NINE_TO_SIX,
    )
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


# The Russian production calendar over the programme period 01.12.2020-30.11.2021, written out by hand
# from the government's resolution on moved days (independent of the holidays package).
DAYS_OFF_ON_WEEKDAYS = [
    date(2021, 1, 1),
    date(2021, 1, 4),
    date(2021, 1, 5),
    date(2021, 1, 6),
    date(2021, 1, 7),
    date(2021, 1, 8),
    date(2021, 2, 22),
    date(2021, 2, 23),
    date(2021, 3, 8),
    date(2021, 5, 3),
    date(2021, 5, 10),
    date(2021, 6, 14),
    date(2021, 11, 4),
    date(2021, 11, 5),
]
WORKED_WEEKEND_DAYS = [date(2021, 2, 20)]


@pytest.mark.parametrize("day", DAYS_OFF_ON_WEEKDAYS, ids=str)
def test_every_weekday_off_of_the_programme_period_is_closed(day: date) -> None:
    assert not representative().is_open(datetime(day.year, day.month, day.day, 7, 0, tzinfo=UTC))


@pytest.mark.parametrize("day", WORKED_WEEKEND_DAYS, ids=str)
def test_every_worked_weekend_day_of_the_programme_period_is_open(day: date) -> None:
    assert representative().is_open(datetime(day.year, day.month, day.day, 7, 0, tzinfo=UTC))


def test_a_year_of_days_follows_the_production_calendar() -> None:
    schedule = representative()
    day = date(2020, 12, 1)
    while day <= date(2021, 11, 30):
        working = (day.weekday() < 5 and day not in DAYS_OFF_ON_WEEKDAYS) or day in WORKED_WEEKEND_DAYS
        ten = datetime(day.year, day.month, day.day, 7, 0, tzinfo=UTC)  # 10:00 Moscow
        seven_pm = datetime(day.year, day.month, day.day, 16, 0, tzinfo=UTC)  # 19:00 Moscow
        assert schedule.is_open(ten) is working, day
        assert not schedule.is_open(seven_pm), day
        day += timedelta(days=1)


@pytest.mark.parametrize(
    ("at", "opening"),
    [
        (utc(2021, 3, 5, 16, 0, 0), datetime(2021, 3, 9, 6, 0, tzinfo=UTC)),  # weekend, then 8 March
        (utc(2020, 12, 31, 16, 0, 0), datetime(2021, 1, 11, 6, 0, tzinfo=UTC)),  # the New Year holidays
        (utc(2021, 2, 19, 15, 30, 0), datetime(2021, 2, 20, 6, 0, tzinfo=UTC)),  # onto the worked Saturday
        (utc(2021, 11, 3, 16, 0, 0), datetime(2021, 11, 8, 6, 0, tzinfo=UTC)),  # 4 and 5 November
    ],
)
def test_next_opening_across_weekends_and_holidays(at: datetime, opening: datetime) -> None:
    assert representative().next_opening(at) == opening


def test_override_closes_a_day_or_gives_other_hours() -> None:
    weekly = MappingProxyType({d: NINE_TO_SIX for d in range(5)})
    overrides = MappingProxyType({date(2021, 3, 2): (), date(2021, 3, 3): parse_intervals("12:00-14:00")})
    schedule = Schedule("x", "Europe/Moscow", weekly, overrides=overrides)
    assert not schedule.is_open(utc(2021, 3, 2, 8, 0, 0))
    assert not schedule.is_open(utc(2021, 3, 3, 8, 0, 0)) and schedule.is_open(utc(2021, 3, 3, 10, 0, 0))
    assert schedule.status(utc(2021, 3, 2, 8, 0, 0)).why == "override: closed; hours that day: none"


def test_emergency_closure_closes_inside_hours_and_says_why() -> None:
    status = representative().status(utc(2021, 3, 1, 8, 0, 0), emergency="потоп")
    assert not status.open and status.why == "emergency closure: потоп"


def test_status_names_the_holiday() -> None:
    status = representative().status(utc(2021, 2, 23, 8, 0, 0))
    assert status.why == "public holiday: День защитника Отечества; hours that day: none"
    assert representative().status(utc(2021, 2, 22, 8, 0, 0)).why.startswith("moved day off: Выходной")


def test_pre_holiday_day_is_one_hour_shorter_only_when_turned_on() -> None:
    weekly = MappingProxyType({d: NINE_TO_SIX for d in range(5)})
    short = Schedule(
        "s", "Europe/Moscow", weekly, country="RU", moved_workday=NINE_TO_SIX, shorten_before_holidays=True
    )
    # 3 November 2021 comes before the 4 November holiday; 20 February is a worked Saturday before 23 February.
    for day in (date(2021, 11, 3), date(2021, 2, 20), date(2021, 4, 30), date(2021, 6, 11)):
        assert [str(i) for i in short.hours_on(day)] == ["09:00-17:00"], day
    # A Friday followed by a weekend and then a holiday is not shortened; neither is an ordinary day.
    for day in (date(2021, 3, 5), date(2021, 3, 4)):
        assert [str(i) for i in short.hours_on(day)] == ["09:00-18:00"], day
    assert [str(i) for i in representative().hours_on(date(2021, 11, 3))] == ["09:00-18:00"]


@pytest.mark.parametrize(
    ("at", "said"),
    [
        (utc(2021, 3, 1, 4, 0, 0), "сегодня в 9 часов"),
        (utc(2021, 3, 1, 16, 0, 0), "завтра в 9 часов"),
        (utc(2021, 3, 6, 7, 0, 0), "во вторник, 9 марта, в 9 часов"),
        (utc(2021, 2, 19, 15, 30, 0), "завтра в 9 часов"),
    ],
)
def test_next_opening_is_said_in_russian(at: datetime, said: str) -> None:
    from ivr.engine import speech

    schedule = representative()
    opening = schedule.next_opening(at)
    assert opening is not None
    assert speech.moment(opening, at.astimezone(schedule.zone)) == said

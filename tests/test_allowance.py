from datetime import datetime
from zoneinfo import ZoneInfo

from ivr.store.allowance import AllowanceRule

MSK = ZoneInfo("Europe/Moscow")
RULE = AllowanceRule("second_opinion", 1, "policy_year", 12, 1, "Europe/Moscow")


def test_policy_year_starts_on_1_december_moscow_time() -> None:
    start, end = RULE.period_at(datetime(2021, 3, 1, 10, tzinfo=MSK))
    assert (start, end) == (datetime(2020, 12, 1, tzinfo=MSK), datetime(2021, 12, 1, tzinfo=MSK))


def test_last_second_of_a_policy_year_and_first_of_the_next_are_in_different_years() -> None:
    last = RULE.period_at(datetime(2021, 11, 30, 23, 59, 59, tzinfo=MSK))
    first = RULE.period_at(datetime(2021, 12, 1, 0, 0, 0, tzinfo=MSK))
    assert last[1] == first[0] == datetime(2021, 12, 1, tzinfo=MSK)


def test_calendar_year_ignores_the_anchor() -> None:
    rule = AllowanceRule("x", 1, "calendar_year", 12, 1, "Europe/Moscow")
    assert rule.period_at(datetime(2021, 3, 1, tzinfo=MSK))[0] == datetime(2021, 1, 1, tzinfo=MSK)

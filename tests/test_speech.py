from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ivr.engine import speech

MSK = ZoneInfo("Europe/Moscow")


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "ноль"),
        (7, "семь"),
        (14, "четырнадцать"),
        (41, "сорок один"),
        (200, "двести"),
        (775, "семьсот семьдесят пять"),
        (610, "шестьсот десять"),
        (999, "девятьсот девяносто девять"),
    ],
)
def test_cardinal_says_numbers_in_russian(n: int, words: str) -> None:
    assert speech.cardinal(n) == words


def test_cardinal_refuses_numbers_it_cannot_say() -> None:
    with pytest.raises(ValueError, match="outside"):
        speech.cardinal(1000)


def test_phone_is_read_in_russian_groups() -> None:
    assert speech.phone("+78002001441") == "восемь, восемьсот, двести, четырнадцать, сорок один"
    assert speech.phone("8 (800) 775 66 10") == "восемь, восемьсот, семьсот семьдесят пять, шестьдесят шесть, десять"


def test_phone_group_with_leading_zero_is_read_digit_by_digit() -> None:
    assert speech.phone("+79160001205").endswith("двенадцать, ноль пять")


def test_digits_are_read_one_by_one() -> None:
    assert speech.digits("9050") == "девять, ноль, пять, ноль"


@pytest.mark.parametrize(
    ("n", "form"), [(1, "час"), (2, "часа"), (5, "часов"), (11, "часов"), (21, "час"), (14, "часов")]
)
def test_plural_follows_russian_rules(n: int, form: str) -> None:
    assert speech.plural(n, "час", "часа", "часов") == form


@pytest.mark.parametrize(
    ("when", "now", "said"),
    [
        (datetime(2021, 3, 1, 9, tzinfo=MSK), datetime(2021, 3, 1, 7, tzinfo=MSK), "сегодня в 9 часов"),
        (datetime(2021, 3, 2, 9, tzinfo=MSK), datetime(2021, 3, 1, 19, tzinfo=MSK), "завтра в 9 часов"),
        (
            datetime(2021, 3, 1, 9, tzinfo=MSK),
            datetime(2021, 2, 27, 10, tzinfo=MSK),
            "в понедельник, 1 марта, в 9 часов",
        ),
        (
            datetime(2021, 3, 3, 9, 30, tzinfo=MSK),
            datetime(2021, 3, 1, 19, tzinfo=MSK),
            "в среду, 3 марта, в 9 часов 30 минут",
        ),
    ],
)
def test_moment_is_said_relative_to_now(when: datetime, now: datetime, said: str) -> None:
    assert speech.moment(when, now) == said

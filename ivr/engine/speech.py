"""Russian words for what the caller hears: digits, phone numbers, dates and times."""

from __future__ import annotations

from datetime import date, datetime

_DIGITS = ("ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять")
_TEENS = (
    "десять", "одиннадцать", "двенадцать", "тринадцать", "четырнадцать",
    "пятнадцать", "шестнадцать", "семнадцать", "восемнадцать", "девятнадцать",
)  # fmt: skip
_TENS = ("", "", "двадцать", "тридцать", "сорок", "пятьдесят", "шестьдесят", "семьдесят",
         "восемьдесят", "девяносто")  # fmt: skip
_HUNDREDS = ("", "сто", "двести", "триста", "четыреста", "пятьсот", "шестьсот", "семьсот",
             "восемьсот", "девятьсот")  # fmt: skip
_MONTHS_GENITIVE = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
                    "сентября", "октября", "ноября", "декабря")  # fmt: skip
_ON_WEEKDAY = ("в понедельник", "во вторник", "в среду", "в четверг", "в пятницу",
               "в субботу", "в воскресенье")  # fmt: skip


def cardinal(n: int) -> str:
    """Say 0..999 in words: 214 -> 'двести четырнадцать'."""
    if not 0 <= n <= 999:
        raise ValueError(f"{n!r} is outside 0..999")
    if n < 10:
        return _DIGITS[n]
    words = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words.append(_HUNDREDS[hundreds])
    if 10 <= rest < 20:
        words.append(_TEENS[rest - 10])
    else:
        tens, units = divmod(rest, 10)
        if tens:
            words.append(_TENS[tens])
        if units:
            words.append(_DIGITS[units])
    return " ".join(words)


def digits(value: str) -> str:
    """Read a string of digits one by one, with pauses: '905' -> 'девять, ноль, пять'."""
    return ", ".join(_DIGITS[int(ch)] for ch in value if ch.isdigit())


def _group(chunk: str) -> str:
    # A group with a leading zero is read digit by digit, as Russians do ("ноль пять").
    if len(chunk) > 1 and chunk.startswith("0"):
        return " ".join(_DIGITS[int(ch)] for ch in chunk)
    return cardinal(int(chunk))


def phone(number: str) -> str:
    """Say a phone number the Russian way: '+78002001441' -> 'восемь, восемьсот, двести, ...'."""
    only = "".join(ch for ch in number if ch.isdigit())
    if len(only) == 11 and only[0] in "78":
        # +7 XXX XXX XX XX is dialled and spoken as 8 XXX XXX XX XX inside Russia.
        groups = ["8", only[1:4], only[4:7], only[7:9], only[9:11]]
    elif only:
        groups = [only[i : i + 3] for i in range(0, len(only), 3)]
    else:
        return ""
    return ", ".join(_group(g) for g in groups)


def plural(n: int, one: str, few: str, many: str) -> str:
    """Pick the Russian plural form for n: 1 час, 2 часа, 5 часов, 21 час."""
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def clock_time(moment: datetime) -> str:
    """'в 9 часов', 'в 14 часов 30 минут'."""
    hours = f"{moment.hour} {plural(moment.hour, 'час', 'часа', 'часов')}"
    if moment.minute:
        minutes = f"{moment.minute} {plural(moment.minute, 'минуту', 'минуты', 'минут')}"
        return f"в {hours} {minutes}"
    return f"в {hours}"


def day_month(day: date) -> str:
    """'1 марта'."""
    return f"{day.day} {_MONTHS_GENITIVE[day.month - 1]}"


def full_date(day: date) -> str:
    """'1 марта 2021 года'."""
    return f"{day_month(day)} {day.year} года"


def moment(when: datetime, now: datetime) -> str:
    """Say a future moment relative to now (same zone): 'сегодня в 9 часов', 'завтра в 9 часов',
    'в понедельник, 1 марта, в 9 часов'."""
    days = (when.date() - now.date()).days
    if days == 0:
        return f"сегодня {clock_time(when)}"
    if days == 1:
        return f"завтра {clock_time(when)}"
    return f"{_ON_WEEKDAY[when.weekday()]}, {day_month(when.date())}, {clock_time(when)}"

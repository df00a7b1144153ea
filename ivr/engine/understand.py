"""What the caller meant: spoken menu choices, yes and no, and phone numbers."""

from __future__ import annotations

import re
from functools import lru_cache

from ivr.flow.model import Menu

_DIGIT_WORDS = {
    "ноль": "0",
    "один": "1",
    "одна": "1",
    "первый": "1",
    "два": "2",
    "две": "2",
    "второй": "2",
    "три": "3",
    "третий": "3",
    "четыре": "4",
    "четвертый": "4",
    "пять": "5",
    "пятый": "5",
    "шесть": "6",
    "шестой": "6",
    "семь": "7",
    "восемь": "8",
    "девять": "9",
}
_YES = frozenset({"да", "верно", "правильно", "подтверждаю", "конечно", "угу", "есть", "1", "один"})
_NO = frozenset({"нет", "неверно", "неправильно", "заново", "другой", "повторить", "2", "два"})
_REPEAT = ("повтор", "ещё раз", "еще раз")
_OPERATOR = ("оператор", "человек", "специалист")
_ANONYMOUS_CALLERS = frozenset({"anonymous", "restricted", "unknown", "blocked", "private", "266696687"})


def _words(text: str) -> list[str]:
    return re.findall(r"[0-9a-zа-я]+", text.lower().replace("ё", "е"))


def _stem(word: str) -> str:
    # Russian inflects word endings: "психолога", "психологу" both start with "психоло".
    return word if len(word) <= 4 else word[: max(4, len(word) - 2)]


@lru_cache(maxsize=4096)
def _keyword(keyword: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A menu keyword's words and their stems (keywords are the flow's, never a caller's words)."""
    parts = tuple(_words(keyword))
    return parts, tuple(_stem(p) for p in parts)


def _says(words: list[str], keyword: str) -> bool:
    """True when the utterance contains the keyword (one or more words) in any inflected form."""
    parts, stems = _keyword(keyword)
    if not parts:
        return False

    def same(word: str, part: str, stem: str) -> bool:
        return word == part or (len(part) > 4 and word.startswith(stem))

    return any(
        all(same(words[i + j], parts[j], stems[j]) for j in range(len(parts)))
        for i in range(len(words) - len(parts) + 1)
    )


def match_speech(node: Menu, text: str) -> str | None:
    """The key a spoken answer stands for in a menu, or None."""
    words = _words(text)
    joined = " ".join(words)
    for option in node.options:
        for keyword in option.keywords:
            if _says(words, keyword):
                return option.key
    for word in words:
        if word in _DIGIT_WORDS:
            return _DIGIT_WORDS[word]
        if word.isdigit() and len(word) == 1:
            return word
    if any(r in joined for r in _REPEAT):
        return "*"
    if any(w.startswith(op) for w in words for op in _OPERATOR):
        return "0"
    return None


def yes_no(kind: str, text: str) -> bool | None:
    """True for yes (1, 'да'), False for no (2, 'нет'), None when the answer is neither."""
    if kind == "digits":
        return {"1": True, "2": False}.get(text[:1])
    if kind == "speech":
        words = set(_words(text))
        if words & _NO:
            return False
        if words & _YES:
            return True
    return None


def usable_caller(caller: str) -> str:
    """The caller's number in E.164 when it can be called back, else ''."""
    raw = caller.strip().lower()
    digits = "".join(ch for ch in raw if ch.isdigit())
    if not raw or raw.lstrip("+") in _ANONYMOUS_CALLERS or not 10 <= len(digits) <= 15:
        return ""
    if raw.startswith(("sip:", "client:")):
        return ""
    return normalise_phone(digits)


def normalise_phone(digits: str) -> str:
    """Typed digits as an E.164 number; Russian habits (8XXXXXXXXXX, 10 digits) become +7."""
    if len(digits) == 11 and digits.startswith("8"):
        return "+7" + digits[1:]
    if len(digits) == 10:
        return "+7" + digits
    return "+" + digits

"""Twilio's parameters are split exactly as the standard library's parse_qsl splits them."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from ivr.web.parameters import Parameters, encoded, pairs

# Text made of what matters to the split: separators, escapes (good, cut short, not UTF-8), plus
# signs and Russian letters, among others.
_PIECES = st.sampled_from(
    ["&", "=", "+", "%", "%2B", "%D0%98", "%D0", "%98", "%E2%82", "%AC", "%zz", "%2", "%%", "a", "Б", " ", "&&", "=="]
)
_TEXT = st.one_of(st.text(), st.lists(st.one_of(_PIECES, st.text(max_size=3))).map("".join))


@given(_TEXT)
def test_any_text_is_split_as_parse_qsl_splits_it(text: str) -> None:
    assert pairs(text) == parse_qsl(text, keep_blank_values=True, errors="replace")


@given(st.lists(st.tuples(st.text(), st.text())))
def test_what_was_encoded_is_given_back(fields: list[tuple[str, str]]) -> None:
    assert pairs(urlencode(fields)) == [(name, value) for name, value in fields]


def test_a_status_callback_body() -> None:
    body = "CallSid=CA1&CallStatus=completed&Caller=%2B79161234567&CalledCity=&Timestamp=Tue%2C+01+Dec+2026&Flag"
    assert pairs(body) == [
        ("CallSid", "CA1"),
        ("CallStatus", "completed"),
        ("Caller", "+79161234567"),
        ("CalledCity", ""),
        ("Timestamp", "Tue, 01 Dec 2026"),
        ("Flag", ""),
    ]


@given(st.dictionaries(st.one_of(st.text(), _PIECES), st.one_of(st.text(), _PIECES)))
def test_fields_are_encoded_as_urlencode_encodes_them(fields: dict[str, str]) -> None:
    assert encoded(fields) == urlencode(fields)


_NAMES = st.sampled_from(["CallSid", "Digits", "From", "SpeechResult", "a", ""])


@given(st.lists(st.tuples(_NAMES, st.one_of(st.text(max_size=4), _PIECES)), max_size=12))
def test_parameters_read_and_sign_as_a_multidict_of_the_same_pairs(found: list[tuple[str, str]]) -> None:
    ours, theirs = Parameters(list(found)), MultiDict(found)
    assert dict(ours) == theirs.to_dict()  # the first value of a repeated name
    for name in ["CallSid", "Digits", "From", "SpeechResult", "a", "", "missing"]:
        assert ours.get(name) == theirs.get(name) and ours.getlist(name) == theirs.getlist(name)
    validator = RequestValidator("token")
    url = "https://example.org/voice"
    assert validator.compute_signature(url, ours) == validator.compute_signature(url, theirs)

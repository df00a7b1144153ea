"""The pure engine: every node kind, on the bundled hotline and on small flows, no web, no database."""

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given as examples
from hypothesis import strategies as st

from ivr.engine import core as engine
from ivr.engine.turns import CallState, Dial, EffectOutcome, End, Gather, Input, RequestEffect, SpendEffect
from ivr.flow import loader as flows
from ivr.flow.model import Flow

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2021, 3, 1, 10, 0, tzinfo=MSK)
CALLER = "+79161234567"


def keys(text: str) -> Input:
    return Input("digits", text, CALLER)


def at(flow: Flow, node: str, **values: str) -> CallState:
    state = CallState(node=node)
    for name, value in values.items():
        state = state.remember(name, value)
    return state


def test_start_says_the_greeting_with_the_emergency_numbers_then_waits_in_the_main_menu(
    hotline: Flow,
) -> None:
    turn = engine.start(hotline, NOW, CALLER)
    assert "сто три" in turn.say[0] and "сто двенадцать" in turn.say[0]
    assert isinstance(turn.action, Gather) and turn.state.node == "main"
    assert turn.action.num_digits == 1 and turn.action.input == "dtmf speech"
    assert "психолог" in turn.action.hints


@pytest.mark.parametrize(
    ("key", "node"),
    [
        ("1", "desk_policy"),
        ("3", "navigator_transfer"),
        ("5", "help_menu"),
        ("6", "info_menu"),
        ("0", "desk_operator"),
        ("4", "desk_operator"),
    ],
)
def test_main_menu_keys_lead_to_their_branches(hotline: Flow, key: str, node: str) -> None:
    assert engine.step(hotline, at(hotline, "main"), keys(key), NOW).state.node == node


def test_star_repeats_the_menu_without_counting_a_failure(hotline: Flow) -> None:
    turn = engine.step(hotline, at(hotline, "main"), keys("*"), NOW)
    assert turn.state.node == "main" and turn.state.invalid == 0
    assert isinstance(turn.action, Gather) and turn.action.prompt == (hotline.nodes["main"].prompt,)  # type: ignore[union-attr]


def test_wrong_key_says_not_recognised_then_a_shorter_reprompt_after_the_first(hotline: Flow) -> None:
    first = engine.step(hotline, at(hotline, "main"), keys("8"), NOW)
    assert first.say == ("Выбор не распознан.",)
    assert isinstance(first.action, Gather) and first.action.prompt[0].startswith("Чтобы организовать")
    second = engine.step(hotline, first.state, keys("7"), NOW)
    assert isinstance(second.action, Gather) and second.action.prompt[0].startswith("Помощь — 1")
    assert (second.state.invalid, second.state.silence) == (2, 0)


def test_three_failures_of_any_kind_connect_to_the_desk_operator(hotline: Flow) -> None:
    state = at(hotline, "main")
    for given in (keys("8"), Input("silence", "", CALLER)):
        state = engine.step(hotline, state, given, NOW).state
    assert (state.invalid, state.silence) == (1, 1)
    last = engine.step(hotline, state, keys("#"), NOW)
    assert last.state.node == "desk_operator" and isinstance(last.action, Dial)
    assert last.action.target == "+78002001441"
    # Why, then one announcement: the operator's own words, not the standard phrase before them.
    assert last.say == ("Выбор не распознан.", "Соединяю с оператором медицинского пульта.")


def test_an_operator_without_words_of_its_own_is_announced_by_the_standard_phrase(
    write_flow: Any,
) -> None:
    from ivr.flow import loader

    flow = loader.load(write_flow(MUTE_OPERATOR))
    state = at(flow, "main")
    for _ in range(2):
        state = engine.step(flow, state, keys("8"), NOW).state
    last = engine.step(flow, state, keys("8"), NOW)
    assert isinstance(last.action, Dial) and last.say == ("Соединяю с оператором.",)


def test_silence_says_it_heard_nothing(hotline: Flow) -> None:
    turn = engine.step(hotline, at(hotline, "main"), Input("silence"), NOW)
    assert turn.say == ("Я вас не слышу.",) and turn.state.silence == 1


@pytest.mark.parametrize(
    ("spoken", "node"),
    [
        ("мне нужен психолог", "help_menu"),
        ("соедините с представителем", "rep_transfer"),
        ("Справочная информация", "info_menu"),
        ("три", "navigator_transfer"),
        ("позовите оператора", "desk_operator"),
    ],
)
def test_menus_answer_to_speech(hotline: Flow, spoken: str, node: str) -> None:
    turn = engine.step(hotline, at(hotline, "main"), Input("speech", spoken, CALLER), NOW)
    assert turn.state.node == node


def test_unrecognised_speech_counts_as_a_wrong_answer(hotline: Flow) -> None:
    turn = engine.step(hotline, at(hotline, "main"), Input("speech", "какая погода", CALLER), NOW)
    assert turn.state.node == "main" and turn.state.invalid == 1


def test_digits_ask_reads_the_value_back_and_stores_it_on_yes(hotline: Flow) -> None:
    confirm = engine.step(hotline, at(hotline, "desk_policy"), keys("123456"), NOW)
    assert confirm.state.phase == "confirm"
    assert isinstance(confirm.action, Gather)
    assert confirm.action.prompt[0].startswith("Вы ввели: один, два, три, четыре, пять, шесть.")
    yes = engine.step(hotline, confirm.state, keys("1"), NOW)
    assert yes.state.node == "desk_name" and yes.state.values["policy"] == "123456"


def test_digits_ask_re_enters_on_no(hotline: Flow) -> None:
    confirm = engine.step(hotline, at(hotline, "desk_policy"), keys("123456"), NOW)
    again = engine.step(hotline, confirm.state, keys("2"), NOW)
    assert again.state.node == "desk_policy" and again.state.phase == "entry" and "policy" not in again.state.values


def test_too_short_policy_number_is_refused_with_the_rule(hotline: Flow) -> None:
    turn = engine.step(hotline, at(hotline, "desk_policy"), keys("12"), NOW)
    assert isinstance(turn.action, Gather) and "от шести до двадцати цифр" in turn.action.prompt[0]
    assert turn.action.finish_on_key == "#" and turn.action.input == "dtmf"


def test_speech_ask_without_confirmation_stores_and_goes_on(hotline: Flow) -> None:
    turn = engine.step(hotline, at(hotline, "desk_complaints"), Input("speech", " болит  голова ", CALLER), NOW)
    assert turn.state.values["complaints"] == "болит голова"


def test_caller_number_is_offered_for_confirmation(hotline: Flow) -> None:
    state = at(hotline, "desk_complaints")
    turn = engine.step(hotline, state, Input("speech", "кашель", CALLER), NOW)
    assert turn.state.node == "desk_phone" and turn.state.phase == "confirm"
    assert isinstance(turn.action, Gather)
    assert "восемь, девятьсот шестнадцать, сто двадцать три, сорок пять, шестьдесят семь" in turn.action.prompt[0]


@pytest.mark.parametrize("caller", ["anonymous", "", "+266696687", "client:alice"])
def test_a_hidden_caller_number_is_typed_instead(hotline: Flow, caller: str) -> None:
    turn = engine.step(hotline, at(hotline, "desk_complaints"), Input("speech", "кашель", caller), NOW)
    assert turn.state.phase == "entry" and isinstance(turn.action, Gather)
    assert turn.action.prompt[0].startswith("Введите номер телефона")


def test_typed_russian_number_is_normalised(hotline: Flow) -> None:
    state = CallState(node="desk_phone")
    typed = engine.step(hotline, state, Input("digits", "89161112233#", "anonymous"), NOW)
    assert typed.state.pending == "+79161112233"


def test_register_node_asks_for_an_effect_and_resume_speaks_the_reference(hotline: Flow) -> None:
    state = at(hotline, "desk_phone", policy="123456", full_name="Иванов", complaints="кашель")
    state = engine.step(hotline, state, keys("1"), NOW).state
    turn = engine.step(hotline, replace(state, phase="confirm", pending=CALLER), keys("1"), NOW)
    assert isinstance(turn.effect, RequestEffect) and turn.effect.kind == "desk"
    assert dict(turn.effect.data) == {
        "policy": "123456",
        "full_name": "Иванов",
        "complaints": "кашель",
        "phone": CALLER,
    }
    done = engine.resume(hotline, turn, EffectOutcome(True, "100016"), NOW, CALLER)
    assert "Её номер: один, ноль, ноль, ноль, один, шесть." in done.say[0]
    assert isinstance(done.action, Dial) and done.state.node == "desk_transfer"


def test_allowance_node_spends_in_the_policy_year_and_resume_routes_refusals(hotline: Flow) -> None:
    turn = engine.step(hotline, at(hotline, "so_first_opinion", policy="555555"), keys("1"), NOW)
    assert isinstance(turn.effect, SpendEffect) and turn.effect.key == "555555" and turn.effect.limit == 1
    assert turn.effect.period_start == datetime(2020, 12, 1, tzinfo=MSK)
    used = datetime(2021, 1, 15, 12, tzinfo=MSK)
    refused = engine.resume(hotline, turn, EffectOutcome(False, None, used), NOW, CALLER)
    assert refused.state.node == "so_used" and isinstance(refused.action, Gather)
    assert "заявка от 15 января 2021 года" in refused.action.prompt[0]
    assert "начнётся 1 декабря 2021 года" in refused.action.prompt[0]


def test_outside_the_programme_nothing_is_registered(hotline: Flow) -> None:
    later = datetime(2021, 12, 1, 0, 0, tzinfo=MSK)
    turn = engine.step(hotline, at(hotline, "so_first_opinion", policy="555555"), keys("1"), later)
    assert turn.effect is None and "сейчас не действует" in turn.say[0]
    assert turn.state.node == "desk_operator"


@pytest.mark.parametrize(
    ("status", "node"),
    [
        ("completed", "goodbye"),
        ("answered", "goodbye"),
        ("busy", "transfer_failed"),
        ("no-answer", "transfer_failed"),
        ("failed", "transfer_failed"),
        ("canceled", "transfer_failed"),
        ("", "transfer_failed"),
    ],
)
def test_every_dial_outcome_leads_somewhere(hotline: Flow, status: str, node: str) -> None:
    turn = engine.step(hotline, at(hotline, "desk_operator"), Input("dial", status, CALLER), NOW)
    assert turn.state.node == node
    assert isinstance(turn.action, End if node == "goodbye" else Gather)


def test_retry_after_a_failed_transfer_dials_the_same_contact_again(hotline: Flow) -> None:
    ringing = engine.step(hotline, at(hotline, "main"), keys("3"), NOW)
    failed = engine.step(hotline, ringing.state, Input("dial", "busy", CALLER), NOW)
    assert failed.state.values["last_transfer"] == "navigator_transfer"
    retry = engine.step(hotline, failed.state, keys("1"), NOW)
    assert isinstance(retry.action, Dial) and retry.action.target == "+78007756610"


def test_psychologist_transfer_marks_the_call_anonymous(hotline: Flow) -> None:
    turn = engine.step(hotline, at(hotline, "help_menu"), keys("1"), NOW)
    assert turn.state.anonymous and isinstance(turn.action, Dial)


def test_state_survives_packing(hotline: Flow) -> None:
    state = at(hotline, "desk_name", policy="123456").remember("reference", "100016", "один")
    assert CallState.unpack(state.pack()) == state


_text = st.text(max_size=40)


@examples(
    node=st.text(min_size=1, max_size=20),
    phase=st.sampled_from(["entry", "confirm"]),
    invalid=st.integers(0, 5),
    silence=st.integers(0, 5),
    values=st.dictionaries(_text, _text, max_size=4),
    spoken=st.dictionaries(_text, _text, max_size=4),
    pending=_text,
    anonymous=st.booleans(),
)
def test_any_state_survives_packing(
    node: str,
    phase: Any,
    invalid: int,
    silence: int,
    values: dict[str, str],
    spoken: dict[str, str],
    pending: str,
    anonymous: bool,
) -> None:
    # Every value has its spoken form (the engine remembers both at once).
    state = CallState(node, phase, invalid, silence, values, {**values, **spoken}, pending, anonymous)
    assert CallState.unpack(state.pack()) == state


def test_lost_call_goes_to_the_main_menu_with_an_apology(hotline: Flow) -> None:
    turn = engine.lost(hotline, NOW)
    assert turn.say[0].startswith("Извините") and turn.state.node == "main"


def test_state_pointing_at_a_removed_node_recovers(hotline: Flow) -> None:
    turn = engine.step(hotline, CallState(node="no_such_node"), keys("1"), NOW)
    assert turn.state.node == "main"


def test_mini_flow_message_menu_transfer_hangup(mini_flow) -> None:
    flow = flows.load(mini_flow, env={})
    turn = engine.start(flow, NOW)
    assert turn.say == ("Привет.",) and turn.state.node == "main"
    info = engine.step(flow, turn.state, Input("speech", "справку пожалуйста"), NOW)
    assert info.say == ("Справка.",) and info.state.node == "main"
    dial = engine.step(flow, info.state, Input("digits", "2"), NOW)
    assert isinstance(dial.action, Dial) and dial.say == ("Соединяю.",)
    bye = engine.step(flow, dial.state, Input("dial", "completed"), NOW)
    assert isinstance(bye.action, End) and bye.say == ("До свидания.",)


MUTE_OPERATOR = """
flow: mute
settings: {start: main, main_menu: main, operator: operator}
contacts: {office: "+74950000000"}
nodes:
  main:
    kind: menu
    prompt: Нажмите 1.
    options: {"1": {to: operator}}
  operator:
    kind: transfer
    contact: office
    outcomes: {otherwise: bye}
  bye:
    kind: hangup
    say: До свидания.
"""

"""Whole calls into the DMS hotline through the simulator: every branch of the phone tree."""

from typing import Any

import pytest
from freezegun import freeze_time

from ivr.store.tables import metadata
from tests.conftest import MONDAY_10, SATURDAY_10

DESK = "+78002001441"
NAVIGATOR = "+78007756610"


def intake(call: Any, policy: str = "7700123456") -> Any:
    """Walk the desk intake from the main menu up to the transfer."""
    call.press("1")
    assert "номер полиса" in call.heard
    call.press(policy + "#")
    call.press("1")
    assert "фамилию, имя и отчество" in call.heard
    call.say("Петрова Анна Сергеевна")
    assert "Вы сказали: Петрова Анна Сергеевна" in call.heard
    call.press("1")
    assert "что вас беспокоит" in call.heard
    call.say("температура тридцать девять и кашель")
    assert "Ваш номер телефона: восемь, девятьсот шестнадцать" in call.heard
    return call.press("1")


def test_greeting_warns_about_103_and_112_then_offers_the_main_menu(sim: Any) -> None:
    call = sim.call(at=MONDAY_10)
    assert "сто три или сто двенадцать" in call.heard
    assert "Чтобы организовать медицинскую помощь, нажмите 1" in call.heard


def test_desk_intake_registers_a_request_says_its_reference_and_connects(sim: Any, requests_of: Any) -> None:
    call = intake(sim.call(at=MONDAY_10))
    (request,) = requests_of("desk")
    assert request["data"] == {
        "policy": "7700123456",
        "full_name": "Петрова Анна Сергеевна",
        "complaints": "температура тридцать девять и кашель",
        "phone": "+79161234567",
    }
    spoken_reference = ", ".join(
        ["ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять"][int(d)]
        for d in request["reference"]
    )
    assert f"Её номер: {spoken_reference}." in call.heard
    assert "гарантийное письмо" in call.heard
    assert call.dialed == [DESK]
    call.dial_outcome("completed")
    assert call.ended and "До свидания" in call.heard


def test_desk_intake_with_a_hidden_number_asks_to_type_it(sim: Any, requests_of: Any) -> None:
    call = sim.call(from_="anonymous", at=MONDAY_10)
    call.press("1").press("123456#").press("1").say("Сидоров").press("1").say("болит зуб")
    assert "Введите номер телефона" in call.heard
    call.press("89031112233#")
    assert "Ваш номер телефона: восемь, девятьсот три, сто одиннадцать, двадцать два, тридцать три" in call.heard
    call.press("1")
    assert requests_of("desk")[0]["data"]["phone"] == "+79031112233"


def test_policy_number_can_be_re_entered_after_a_mistake(sim: Any, requests_of: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("1").press("111111#")
    assert "Вы ввели: один, один, один, один, один, один." in call.heard
    call.press("2")
    assert "Введите номер полиса" in call.heard
    call.press("222222#").press("1")
    assert "фамилию" in call.heard


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        ("2021-03-01T05:59:59+00:00", False),  # 08:59:59 Moscow, server clock in UTC
        ("2021-03-01T06:00:00+00:00", True),  # 09:00 Moscow
        ("2021-03-01T14:59:59+00:00", True),  # 17:59:59 Moscow
        ("2021-03-01T15:00:00+00:00", False),  # 18:00 Moscow
        (SATURDAY_10, False),
        ("2021-02-23T10:00:00+03:00", False),  # public holiday on a Tuesday
        ("2021-02-20T10:00:00+03:00", True),  # Saturday worked instead of Monday 22 February
    ],
)
def test_representative_is_connected_only_in_business_hours(sim: Any, moment: str, is_open: bool) -> None:
    call = sim.call(at=moment)
    call.press("2")
    if is_open:
        assert "Соединяю с региональным представителем" in call.heard
        assert call.dialed == [DESK]
    else:
        assert call.dialed == []
        assert "работает с 9 до 18 часов" in call.heard


@pytest.mark.parametrize(
    ("moment", "next_opening"),
    [
        (SATURDAY_10, "в понедельник, 8 марта"),  # wrong! 8 March is a holiday; checked below
        ("2021-03-01T07:00:00+03:00", "сегодня в 9 часов"),
        ("2021-03-01T19:00:00+03:00", "завтра в 9 часов"),
    ],
)
def test_closed_representative_says_the_next_opening(sim: Any, moment: str, next_opening: str) -> None:
    call = sim.call(at=moment)
    call.press("2")
    if moment == SATURDAY_10:
        # Saturday 6 March 2021: Monday 8 March is International Women's Day, so Tuesday 9 March.
        assert "Он будет на связи во вторник, 9 марта, в 9 часов." in call.heard
    else:
        assert f"Он будет на связи {next_opening}" in call.heard


def test_closed_representative_offers_the_desk(sim: Any) -> None:
    call = sim.call(at=SATURDAY_10)
    call.press("2").press("1")
    assert call.dialed == [DESK]


def test_closed_representative_takes_a_call_back_request(sim: Any, requests_of: Any) -> None:
    call = sim.call(at=SATURDAY_10)
    call.press("2").press("2")
    assert "Если по нему можно перезвонить, нажмите 1" in call.heard
    call.press("1")
    (request,) = requests_of("callback")
    assert request["data"] == {"phone": "+79161234567", "contact": "representative"}
    assert "Заявка на обратный звонок зарегистрирована" in call.heard
    assert "Чтобы организовать медицинскую помощь" in call.heard  # back in the main menu


def test_navigator_is_described_then_connected(sim: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("3")
    assert "о назначенных лекарствах" in call.heard and "восемь, восемьсот, семьсот семьдесят пять" in call.heard
    assert call.dialed == [NAVIGATOR]


def test_programme_extension_is_explained_then_the_desk_connected(sim: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("4")
    assert "расширения программы" in call.heard and call.dialed == [DESK]


def test_zero_reaches_the_desk_operator_at_once(sim: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("0")
    assert call.heard == "Соединяю с оператором медицинского пульта." and call.dialed == [DESK]


def test_zero_reaches_the_operator_from_a_sub_menu_too(sim: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("6").press("0")
    assert call.dialed == [DESK]


def test_star_repeats_the_current_menu(sim: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("5").press("*")
    assert call.heard.startswith("Чтобы получить анонимную консультацию психолога")


def test_psychologist_is_anonymous_nothing_is_stored(sim: Any, app: Any, requests_of: Any) -> None:
    call = sim.call(at=MONDAY_10, from_="+79991112233")
    call.press("5").press("1")
    assert "анонимна" in call.heard and call.dialed == [DESK]
    call.dial_outcome("completed")
    assert call.ended and requests_of() == []
    store = app.extensions["ivr"].handler.store
    with store.engine.connect() as conn:
        dump = "\n".join(
            str(row)
            for table in metadata.sorted_tables
            # the one row that says an anonymous call happened in that hour; the flow's own text
            if table.name not in ("ivr_journal", "ivr_flow_revisions")
            for row in conn.execute(table.select())
        )
        journal = [tuple(row) for row in conn.execute(metadata.tables["ivr_journal"].select())]
    assert "9991112233" not in dump and dump == ""
    assert "9991112233" not in str(journal) and call.call_sid not in str(journal) and len(journal) == 1


def test_psychologist_busy_offers_retry_but_no_call_back(sim: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("5").press("1").dial_outcome("busy")
    assert "попробовать ещё раз" in call.heard and "обратный звонок" not in call.heard
    call.press("1")
    assert call.dialed == [DESK]


def test_second_opinion_is_granted_once_per_policy_year(sim: Any, requests_of: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("5").press("2").press("4455667#").press("1")
    assert "Люкс Медикал" in call.heard and "первое медицинское мнение" in call.heard
    call.press("1")
    assert "Заявка на второе медицинское мнение зарегистрирована" in call.heard
    assert call.dialed == [DESK]
    assert [r["policy"] for r in requests_of("second_opinion")] == ["4455667"]

    again = sim.call(at="2021-06-10T12:00:00+03:00")
    again.press("5").press("2").press("4455667#").press("1").press("1")
    assert "уже получено: заявка от 1 марта 2021 года" in again.heard
    assert "Следующий год действия договора начнётся 1 декабря 2021 года" in again.heard
    assert again.dialed == [] and len(requests_of("second_opinion")) == 1
    again.press("1")
    assert again.dialed == [DESK]


def test_second_opinion_for_another_policy_is_not_affected(sim: Any, requests_of: Any) -> None:
    sim.call(at=MONDAY_10).press("5").press("2").press("111111#").press("1").press("1")
    other = sim.call(at=MONDAY_10).press("5").press("2").press("222222#").press("1").press("1")
    assert other.dialed == [DESK] and len(requests_of("second_opinion")) == 2


def test_second_opinion_without_a_first_opinion_spends_nothing(sim: Any, requests_of: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("5").press("2").press("4455667#").press("1").press("2")
    assert "Без первого медицинского мнения второе мнение не оформляется" in call.heard
    assert requests_of() == []
    later = sim.call(at=MONDAY_10).press("5").press("2").press("4455667#").press("1").press("1")
    assert later.dialed == [DESK]


def test_caller_hanging_up_before_registration_spends_nothing(sim: Any, requests_of: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("5").press("2").press("4455667#").press("1").hangup()
    assert requests_of() == []


@pytest.mark.parametrize(
    ("moment", "active"),
    [
        ("2020-11-30T23:59:59+03:00", False),
        ("2020-12-01T00:00:00+03:00", True),
        ("2021-11-30T23:59:59+03:00", True),
        ("2021-12-01T00:00:00+03:00", False),
    ],
)
def test_programme_period_edges(sim: Any, requests_of: Any, moment: str, active: bool) -> None:
    call = sim.call(at=moment)
    call.press("5").press("2")
    if active:
        assert "введите номер полиса" in call.heard
    else:
        assert "сейчас не действует" in call.heard and call.dialed == [DESK]
    call2 = sim.call(at=moment)
    call2.press("1")
    assert ("номер полиса" in call2.heard) is active
    assert requests_of() == []


@pytest.mark.parametrize(
    ("key", "phrase"),
    [
        ("1", "полис ОМС, полис ДМС и документ, удостоверяющий личность"),
        ("2", "Страховой случай — это обращение при медицинских показаниях"),
        ("3", "с 0 часов 1 декабря 2020 года до 24 часов 30 ноября 2021 года"),
        ("4", "не оплачиваются, а личные расходы на них не возмещаются"),
        ("5", "ди эм эс ви эс кей один, собака, ви эс кей, точка, ру"),
    ],
)
def test_information_menu_items(sim: Any, key: str, phrase: str) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("6").press(key)
    assert phrase in call.heard
    assert "Для возврата в главное меню нажмите 9" in call.heard  # the menu comes again
    call.press("9")
    assert call.heard.startswith("Чтобы организовать медицинскую помощь")


def test_wrong_keys_then_silence_connect_to_the_operator_not_a_hang_up(sim: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("8")
    assert call.heard.startswith("Выбор не распознан.") and "нажмите 1" in call.heard
    call.silence()
    assert call.heard.startswith("Я вас не слышу.") and "Помощь — 1" in call.heard
    call.press("9")
    assert call.heard == "Выбор не распознан. Соединяю с оператором медицинского пульта." and call.dialed == [DESK]


@pytest.mark.parametrize("outcome", ["busy", "no-answer", "failed", "canceled"])
def test_failed_transfer_apologises_and_offers_a_choice(sim: Any, outcome: str) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("3").dial_outcome(outcome)
    assert "не удалось соединить" in call.heard and not call.ended
    call.press("1")
    assert call.dialed == [NAVIGATOR]


def test_failed_transfer_call_back_is_for_the_contact_that_failed(sim: Any, requests_of: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("3").dial_outcome("no-answer").press("2").press("1")
    assert requests_of("callback")[0]["data"]["contact"] == "navigator"


def test_failed_transfer_and_a_silent_caller_ends_politely(sim: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.press("0").dial_outcome("failed").silence().silence().silence()
    assert call.ended and "перезвоните позже" in call.heard


def test_speech_drives_the_menus(sim: Any) -> None:
    call = sim.call(at=MONDAY_10)
    call.say("мне нужна справочная информация")
    assert call.heard.startswith("Какие документы взять в клинику")
    call.say("документы")
    assert "полис ОМС" in call.heard


@freeze_time("2021-03-01 06:30:00")
def test_whole_call_on_the_frozen_server_clock(sim: Any) -> None:
    call = sim.call()  # no simulated time: the app reads its (frozen) clock, 09:30 Moscow
    call.press("2")
    assert call.dialed == [DESK]

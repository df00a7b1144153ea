"""Wrong inputs at the edges get one clear answer, and nothing a caller said is run by a spreadsheet."""

import csv
import io
from typing import Any

import pytest
from click.testing import CliRunner

from ivr.cli import main
from ivr.spreadsheet import cell

from .conftest import MONDAY_10


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+7 916", "'+7 916"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("Иванов", "Иванов"),
        (12, 12),
        ("", ""),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_written_as_text(value: Any, written: Any) -> None:
    assert cell(value) == written


def test_a_caller_s_words_in_the_requests_export_are_never_a_formula(
    sim: Any, ivr_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVR_DATABASE_URL", ivr_config["DATABASE_URL"])
    call = sim.call(at=MONDAY_10).press("1").press("123456#").press("1")
    call.say('=HYPERLINK("http://evil","click")').press("1").say("@болит").press("1")
    assert "Заявка зарегистрирована" in call.heard
    exported = CliRunner().invoke(main, ["requests", "list", "--csv"]).output
    (header, row) = list(csv.reader(io.StringIO(exported)))
    values = dict(zip(header, row, strict=True))
    assert values["full_name"] == '\'=HYPERLINK("http://evil","click")' and values["complaints"] == "'@болит"

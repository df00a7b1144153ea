"""CSV that a spreadsheet opens as data: no cell is ever run as a formula.

A caller's spoken words land in exported requests; a cell beginning with =, +, -, @, a tab or a
carriage return is a formula to Excel and LibreOffice (`=HYPERLINK("http://evil")`). Such a cell
is written with a leading apostrophe, which the spreadsheet shows as text and does not display.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """The value, neutralised if a spreadsheet would run it; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def rows_to_csv(rows: Iterable[Iterable[Any]]) -> str:
    """The rows as CSV text, every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return buffer.getvalue()

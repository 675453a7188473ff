"""CSV that a spreadsheet opens as data: cells that would start a formula are escaped (CSV injection).

Excel, LibreOffice and Google Sheets run a cell starting with ``=``, ``+``, ``-`` or ``@`` as a
formula, and a leading tab or carriage return can hide such a start. Text that people typed (a
judgment's reason, a user name) reaches our exports, so every CSV the project writes goes through
``csv_writer``: such a cell gets a leading apostrophe, which spreadsheets show as text (OWASP's
advice). Numbers are left alone, whether passed as numbers or as their text ("-0.25"), so numeric
columns stay numeric.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_safe_cell(value: Any) -> Any:
    """The value, or for text that a spreadsheet would run as a formula, the text after an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` whose rows are escaped cell by cell."""

    def __init__(self, handle, **kwargs):
        self._writer = csv.writer(handle, **kwargs)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([csv_safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(handle, **kwargs) -> SafeWriter:
    return SafeWriter(handle, **kwargs)

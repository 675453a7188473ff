"""CSV injection: text that a spreadsheet would run as a formula is written as text."""

from __future__ import annotations

import csv
import io

import pytest

from recsys_site.csv_safety import csv_safe_cell, csv_writer


@pytest.mark.parametrize(
    "text",
    ["=1+1", "+33 1 23", "-cmd|' /C calc'!A0", "@SUM(A1)", "\t=1+1", "\r=1+1", "-", '=HYPERLINK("x")'],
)
def test_a_cell_that_would_start_a_formula_gets_a_leading_apostrophe(text):
    assert csv_safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["-0.25", "+3", "-1e-05", "4.5", 3, -2.5, None, "", "a=b", "'=1", "[1, 2]"])
def test_numbers_and_harmless_text_are_left_alone(value):
    assert csv_safe_cell(value) == value


def test_the_writer_escapes_every_cell_of_every_row():
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(["name", "score"])
    writer.writerows([["=2+3", -0.5], ["@me", "-0.125000"]])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["name", "score"],
        ["'=2+3", "-0.5"],
        ["'@me", "-0.125000"],
    ]


def test_every_csv_writer_in_the_project_goes_through_the_helper():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for folder in ("movies", "feedback", "training", "recsys_site")
        for path in (root / folder).rglob("*.py")
        if "/tests/" not in str(path) and path.name != "csv_safety.py"
        if "csv.writer(" in path.read_text() or "csv.DictWriter(" in path.read_text()
    ]
    assert offenders == []

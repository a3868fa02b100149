"""Loading purchases from a CSV export: header checks, parse errors with line numbers, nothing written."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from loyalty.analytics.loader import load_csv
from loyalty.errors import ValidationFailed
from tests.analytics.conftest import HISTORY


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    return path


class TestLoadCsv:
    def test_reads_required_columns_and_ignores_the_rest(self, small_csv: Path) -> None:
        data = load_csv(small_csv)
        assert data.transactions.columns == ["customer", "day", "amount", "store"]
        assert data.transactions.height == len(HISTORY)
        assert data.as_of == date(2024, 3, 30)  # the last date in the file
        assert data.transactions["amount"].sum() == sum(h[2] for h in HISTORY)

    def test_occurred_at_timestamps_and_string_customers(self, tmp_path: Path) -> None:
        path = write(tmp_path, "Customer,occurred_at,Amount\nA-1,2024-01-02T23:30:00+07:00,120000\n"
                               "B-2,2024-01-03 10:00:00,5 000\n,2024-01-04,9\n")
        data = load_csv(path, as_of=date(2024, 2, 1))
        assert data.transactions["customer"].to_list() == ["A-1", "B-2"]  # the anonymous row is left out
        assert data.transactions["day"].to_list() == [date(2024, 1, 2), date(2024, 1, 3)]
        assert data.transactions["amount"].to_list() == [120000, 5000]
        assert data.as_of == date(2024, 2, 1)

    def test_as_of_cuts_later_rows(self, small_csv: Path) -> None:
        assert load_csv(small_csv, as_of=date(2024, 1, 31)).transactions.height == 5

    def test_missing_columns_are_named(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationFailed, match=r"t.csv:1: the header lacks date \(or occurred_at\), amount"):
            load_csv(write(tmp_path, "customer,when,total\n1,2024-01-01,3\n"))

    def test_bad_date_names_line_and_column(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationFailed, match=r"t.csv:3: date: not an ISO date.*'01/02/2024'") as caught:
            load_csv(write(tmp_path, "customer,date,amount\n1,2024-01-01,3\n2,01/02/2024,4\n"))
        assert caught.value.extra == {"line": 3, "column": "date"}

    def test_bad_amount_names_line(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationFailed, match=r"t.csv:4: amount: not a number: 'abc'"):
            load_csv(write(tmp_path, "customer,date,amount\n1,2024-01-01,3\n1,2024-01-02,4\n2,2024-01-03,abc\n"))

    def test_empty_amount_names_line(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationFailed, match=r"t.csv:2: amount is empty"):
            load_csv(write(tmp_path, "customer,date,amount\n1,2024-01-01,\n"))

    def test_fractional_amounts_are_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationFailed, match="whole currency units"):
            load_csv(write(tmp_path, "customer,date,amount\n1,2024-01-01,3.5\n"))

    def test_missing_and_empty_files(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationFailed, match="cannot read"):
            load_csv(tmp_path / "nope.csv")
        with pytest.raises(ValidationFailed, match="empty"):
            load_csv(write(tmp_path, ""))

"""Small hand-computed purchase histories shared by the analytics tests."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from loyalty.analytics.loader import Dataset

AS_OF = date(2024, 3, 31)

# customer, day, amount: five customers whose RFM quintiles are one each (see test_reports.py).
HISTORY = [
    (1, "2024-02-01", 100), (1, "2024-03-01", 100), (1, "2024-03-10", 100), (1, "2024-03-20", 100),
    (1, "2024-03-30", 100),
    (2, "2024-01-01", 50), (2, "2024-02-15", 50), (2, "2024-03-01", 50), (2, "2024-03-25", 50),
    (3, "2024-03-01", 1000),
    (4, "2024-01-15", 10), (4, "2024-02-01", 10),
    (5, "2024-01-01", 5), (5, "2024-01-02", 5), (5, "2024-01-03", 5),
]


def frame(history: list[tuple[int, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"customer": [h[0] for h in history], "day": [date.fromisoformat(h[1]) for h in history],
         "amount": [h[2] for h in history], "store": ["HN01"] * len(history)},
        schema={"customer": pl.Int64, "day": pl.Date, "amount": pl.Int64, "store": pl.String})


@pytest.fixture
def small() -> Dataset:
    return Dataset(frame(HISTORY), AS_OF, "test")


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    path = tmp_path / "export.csv"
    lines = ["order,customer,date,amount,note"] + [f"o{i},{c},{d},{a},x" for i, (c, d, a) in enumerate(HISTORY)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path

"""The shape every analytics report returns: a main table, secondary tables, figures and warnings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl


@dataclass(slots=True)
class Report:
    name: str
    title: str
    as_of: date
    # One row per customer (or cohort, segment, ...): what --out writes as CSV.
    table: pl.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, pl.DataFrame] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Arrays for --plot that are not worth putting in the JSON.
    plot_data: dict[str, Any] = field(default_factory=dict)
    # The columns a terminal table shows (all by default); --out and JSON always have every column.
    display: list[str] | None = None

    def to_json(self, limit: int | None = 100) -> dict[str, Any]:
        """JSON-ready: the summary at the top level, every table as a list of rows (the main one cut at `limit`)."""
        main = self.table if limit is None else self.table.head(limit)
        return {
            "report": self.name, "title": self.title, "as_of": self.as_of.isoformat(),
            **{key: jsonable(value) for key, value in self.summary.items()},
            "rows": rows(main), "total_rows": self.table.height,
            "tables": {name: rows(frame) for name, frame in self.sections.items()},
            "warnings": list(self.warnings),
        }


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, date | datetime):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return value


def rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: jsonable(v) for k, v in row.items()} for row in frame.to_dicts()]

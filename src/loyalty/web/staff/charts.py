"""Chart.js configurations (JSON for <canvas data-chart>): the vendored library draws them in the browser.

Chosen over server-rendered SVG from analytics/plots.py (matplotlib) because the charts stay sharp
at any size, show values on hover, and a page's data is a few kilobytes of JSON instead of an image
rendered per request.
"""

from __future__ import annotations

from typing import Any

BLUE, GREEN, RED, GREY, ORANGE = "#0b5cd5", "#137333", "#c5221f", "#9aa3b2", "#e37400"
PALETTE = [BLUE, ORANGE, GREEN, RED, "#7b1fa2", "#00838f", "#6d4c41", GREY]


def sparkline(labels: list[str], values: list[float | None], colour: str = BLUE) -> dict[str, Any]:
    return {
        "type": "line",
        "data": {"labels": labels, "datasets": [{"data": values, "borderColor": colour, "borderWidth": 2,
                                                 "pointRadius": 0, "tension": 0.3, "spanGaps": True}]},
        "options": {"plugins": {"legend": {"display": False}},
                    "interaction": {"intersect": False, "mode": "index"},
                    "scales": {"x": {"display": False}, "y": {"display": False}}},
    }


def line(labels: list[Any], series: dict[str, list[float | None]], *, x_title: str = "", y_title: str = "",
         y_max: float | None = None) -> dict[str, Any]:
    datasets = [{"label": name, "data": values, "borderColor": PALETTE[i % len(PALETTE)], "pointRadius": 0,
                 "borderWidth": 2, "tension": 0.2} for i, (name, values) in enumerate(series.items())]
    y: dict[str, Any] = {"beginAtZero": True, "title": {"display": bool(y_title), "text": y_title}}
    if y_max is not None:
        y["max"] = y_max
    return {"type": "line", "data": {"labels": labels, "datasets": datasets},
            "options": {"interaction": {"intersect": False, "mode": "index"},
                        "scales": {"x": {"title": {"display": bool(x_title), "text": x_title}}, "y": y}}}


def bars(labels: list[Any], series: dict[str, list[float | None]], *, stacked: bool = False,
         horizontal: bool = False, y_title: str = "") -> dict[str, Any]:
    datasets = [{"label": name, "data": values, "backgroundColor": PALETTE[i % len(PALETTE)]}
                for i, (name, values) in enumerate(series.items())]
    return {"type": "bar", "data": {"labels": labels, "datasets": datasets},
            "options": {"indexAxis": "y" if horizontal else "x",
                        "plugins": {"legend": {"display": len(series) > 1}},
                        "scales": {"x": {"stacked": stacked},
                                   "y": {"stacked": stacked, "title": {"display": bool(y_title), "text": y_title}}}}}

"""Chart specs for the console: plain data that Chart.js draws (static/frontend/console.js).

A chart is data, not code: the spec goes into the page with `json_script`, so nothing here is
ever executed in the browser. Every chart carries a text summary for screen readers.
"""

from __future__ import annotations

from dataclasses import dataclass

# Distinguishable for common colour-vision deficiencies (Okabe–Ito), darkened for contrast.
PALETTE = ["#4f46e5", "#d55e00", "#009e73", "#cc79a7", "#0072b2", "#e69f00", "#56b4e9"]


@dataclass
class Chart:
    id: str
    label: str  # what the chart shows (the canvas's accessible name)
    spec: dict
    summary: str = ""

    @property
    def spec_id(self) -> str:
        return f"{self.id}-spec"


def _datasets(series: dict[str, list], kind: str) -> list[dict]:
    return [
        {
            "label": name,
            "data": values,
            "backgroundColor": PALETTE[i % len(PALETTE)],
            "borderColor": PALETTE[i % len(PALETTE)],
            **({"fill": False, "tension": 0.25, "pointRadius": 2} if kind == "line" else {}),
        }
        for i, (name, values) in enumerate(series.items())
    ]


def bar(
    id: str,
    label: str,
    labels: list[str],
    series: dict[str, list],
    *,
    stacked: bool = False,
    horizontal: bool = False,
    summary: str = "",
) -> Chart:
    options: dict = {"scales": {"x": {"stacked": stacked}, "y": {"stacked": stacked}}}
    if horizontal:
        options["indexAxis"] = "y"
    return Chart(
        id,
        label,
        {
            "type": "bar",
            "data": {"labels": labels, "datasets": _datasets(series, "bar")},
            "options": options,
        },
        summary,
    )


def line(id: str, label: str, labels: list[str], series: dict[str, list], *, summary="") -> Chart:
    return Chart(
        id,
        label,
        {"type": "line", "data": {"labels": labels, "datasets": _datasets(series, "line")}},
        summary,
    )


def intervals(
    id: str,
    label: str,
    labels: list[str],
    series: dict[str, list[tuple[float, float] | None]],
    *,
    summary: str = "",
) -> Chart:
    """Confidence intervals as floating bars: each value is (low, high), or None where an arm
    has no data yet."""
    return Chart(
        id,
        label,
        {
            "type": "bar",
            "data": {
                "labels": labels,
                "datasets": _datasets(
                    {
                        name: [list(v) if v is not None else None for v in values]
                        for name, values in series.items()
                    },
                    "bar",
                ),
            },
            "options": {"indexAxis": "y"},
        },
        summary,
    )


def gauge(id: str, label: str, used: int, limit: int | None, *, summary: str = "") -> Chart:
    """Quota used against its limit, as a doughnut (unlimited: used only)."""
    remaining = max(0, limit - used) if limit else 0
    return Chart(
        id,
        label,
        {
            "type": "doughnut",
            "data": {
                "labels": ["Used", "Remaining"],
                "datasets": [
                    {"data": [used, remaining], "backgroundColor": [PALETTE[0], "#e5e7eb"]}
                ],
            },
            "options": {"cutout": "70%", "plugins": {"legend": {"display": False}}},
        },
        summary,
    )

"""Trend charts drawn on the server as inline SVG: no script (the CSP forbids inline script and
a charting library would be one more thing to precache), the same picture when printed, and a
``<title>`` on every point so hovering shows the figure. Colours are SVG attributes, not
``style``, so the CSP's style rules do not apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from fieldapp.rules.kpi import KpiResult

PALETTE = ("#1f6feb", "#d9480f", "#2b8a3e", "#ae3ec9", "#e8590c", "#0b7285")


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    result: KpiResult
    month: date


@dataclass
class Series:
    key: str
    label: str
    colour: str
    points: list[Point] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)  # polyline "x,y x,y" runs without gaps


@dataclass
class Chart:
    width: int
    height: int
    left: int
    right: int  # x of the plot's right edge
    top: int
    bottom: int
    series: list[Series]
    x_labels: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    target_y: float | None


def line_chart(
    months: list[date],
    series: list[tuple[str, str, list[KpiResult]]],
    *,
    width: int = 640,
    height: int = 220,
    target: float | None = None,
    scale: float = 1.0,
) -> Chart:
    """One line per ``(key, label, results)``, a result per month, from 0 to ``scale`` (100 %
    unless a rate is always small, like complaints per service: see :func:`nice_scale`)."""
    left, right, top, bottom = 44, 30, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(months) - 1, 1)

    def y_of(value: float) -> float:
        return round(top + plot_h * (1 - value / scale), 1)

    out = []
    for index, (key, label, results) in enumerate(series):
        line = Series(key, label, PALETTE[index % len(PALETTE)])
        run: list[str] = []
        for n, (month, result) in enumerate(zip(months, results, strict=True)):
            if result.value is None:
                if len(run) > 1:
                    line.segments.append(" ".join(run))
                run = []
                continue
            point = Point(round(left + n * step, 1), y_of(min(result.value, scale)), result, month)
            line.points.append(point)
            run.append(f"{point.x},{point.y}")
        if len(run) > 1:
            line.segments.append(" ".join(run))
        out.append(line)
    return Chart(
        width=width,
        height=height,
        left=left,
        right=width - right,
        top=top,
        bottom=height - bottom,
        series=out,
        x_labels=[(round(left + n * step, 1), m.strftime("%Y-%m")) for n, m in enumerate(months)],
        y_ticks=[(y_of(scale * f), f"{scale * f * 100:g} %") for f in (0, 0.25, 0.5, 0.75, 1)],
        target_y=None if target is None else y_of(target),
    )


def nice_scale(series: list[list[KpiResult]]) -> float:
    """The smallest of 1 %, 2 %, 5 %, 10 %, 20 %, 50 % and 100 % that holds every value."""
    top = max((r.value for results in series for r in results if r.value is not None), default=0)
    return next((s for s in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5) if top <= s), 1.0)

"""Geometry of the dashboard's charts, drawn as inline SVG by `templates/_charts.html`.

No chart library and no JavaScript: these functions turn numbers into coordinates, tick
positions and Babel-formatted tick labels; the templates draw them. Colours are CSS classes
(`s0`..`s7`), so the stylesheet decides them.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from babel.dates import format_date
from babel.numbers import format_decimal

PALETTE = 8
Number = float


@dataclass
class Frame:
    """The drawing area: the SVG size and the plot rectangle inside the axes."""

    width: int
    height: int
    left: int = 48
    right: int = 12
    top: int = 12
    bottom: int = 28

    @property
    def plot_width(self) -> float:
        """Width of the plot rectangle."""
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        """Height of the plot rectangle."""
        return self.height - self.top - self.bottom


@dataclass
class Chart:
    """What a template needs to draw one chart."""

    kind: str
    frame: Frame
    series: List[Dict] = field(default_factory=list)
    x_ticks: List[Dict] = field(default_factory=list)
    y_ticks: List[Dict] = field(default_factory=list)
    bars: List[Dict] = field(default_factory=list)
    empty: bool = False


def nice_step(value: Number) -> Number:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _scale(maximum: Number, ticks: int = 4) -> Tuple[Number, Number]:
    """A tick step and an axis top above `maximum`: at most `ticks` steps of a round size."""
    step = nice_step(maximum / ticks) if maximum > ticks else 1
    return step, step * max(1, math.ceil(maximum / step))


def _y_ticks(frame: Frame, top: Number, step: Number, locale: str) -> List[Dict]:
    count = round(top / step)
    return [{"y": round(frame.top + frame.plot_height * (1 - i / count), 1),
             "label": format_decimal(step * i, format="#,##0.##", locale=locale)} for i in range(count + 1)]


def _x_ticks(frame: Frame, days: Sequence[dt.date], locale: str, count: int = 6) -> List[Dict]:
    if not days:
        return []
    step = max(1, math.ceil(len(days) / count))
    return [{"x": round(_x(frame, i, len(days)), 1), "label": format_date(day, format="d MMM", locale=locale)}
            for i, day in enumerate(days) if i % step == 0]


def _x(frame: Frame, index: int, count: int) -> float:
    if count <= 1:
        return frame.left + frame.plot_width / 2
    return frame.left + frame.plot_width * index / (count - 1)


def line_chart(days: Sequence[dt.date], series: Sequence[Tuple[str, Sequence[Number]]], locale: str = "en",
               width: int = 720, height: int = 240) -> Chart:
    """Lines over days: one per (name, values) pair, values aligned with `days`."""
    frame = Frame(width, height)
    step, top = _scale(max((max(values, default=0) for _, values in series), default=0))
    chart = Chart("line", frame, x_ticks=_x_ticks(frame, days, locale), y_ticks=_y_ticks(frame, top, step, locale))
    for number, (name, values) in enumerate(series):
        points = " ".join(f"{_x(frame, i, len(days)):.1f},{frame.top + frame.plot_height * (1 - v / top):.1f}"
                          for i, v in enumerate(values))
        chart.series.append({"name": name, "points": points, "css": f"s{number % PALETTE}",
                             "total": sum(values)})
    chart.empty = not any(any(values) for _, values in series)
    return chart


def stacked_columns(days: Sequence[dt.date], stacks: Sequence[Tuple[str, Sequence[Number]]], locale: str = "en",
                    width: int = 720, height: int = 220) -> Chart:
    """Columns over days, each made of the stacks' values on that day (bottom to top)."""
    frame = Frame(width, height)
    totals = [sum(values[i] for _, values in stacks) for i in range(len(days))]
    step, top = _scale(max(totals, default=0))
    slot = frame.plot_width / max(1, len(days))
    every = max(1, math.ceil(len(days) / 6))
    ticks = [{"x": round(frame.left + slot * (i + 0.5), 1), "label": format_date(day, format="d MMM", locale=locale)}
             for i, day in enumerate(days) if i % every == 0]
    chart = Chart("columns", frame, x_ticks=ticks, y_ticks=_y_ticks(frame, top, step, locale))
    bar_width = max(1.0, slot * 0.8)
    for i, day in enumerate(days):
        base = frame.top + frame.plot_height
        for number, (name, values) in enumerate(stacks):
            size = frame.plot_height * values[i] / top
            base -= size
            if size > 0:
                chart.bars.append({"x": round(frame.left + slot * i + (slot - bar_width) / 2, 2), "y": round(base, 2),
                                   "width": round(bar_width, 2), "height": round(size, 2), "css": f"s{number}",
                                   "stack": name, "day": format_date(day, locale=locale),
                                   "value": format_decimal(values[i], locale=locale)})
    chart.series = [{"name": name, "css": f"s{number}"} for number, (name, _) in enumerate(stacks)]
    chart.empty = not any(totals)
    return chart


def bar_chart(rows: Sequence[Tuple[str, Number]], locale: str = "en", width: int = 480, row_height: int = 22,
              label_width: int = 190, value_format: Optional[str] = None) -> Chart:
    """Horizontal bars, one per (label, value), in the given order."""
    frame = Frame(width, max(1, len(rows)) * row_height + 8, left=label_width, right=64, top=4, bottom=4)
    top = max((value for _, value in rows), default=0) or 1
    chart = Chart("bars", frame)
    for i, (label, value) in enumerate(rows):
        chart.bars.append({
            "label": label, "y": frame.top + i * row_height, "height": row_height - 6,
            "width": round(max(0.0, frame.plot_width * value / top), 2), "x": frame.left,
            "value": format_decimal(value, format=value_format, locale=locale) if value_format is not None
            else format_decimal(value, locale=locale),
            "css": "s0",
        })
    chart.empty = not any(value for _, value in rows)
    return chart

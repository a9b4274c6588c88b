"""Jinja2 rendering with Babel formatting: every word staff read lives in `templates/`.

Numbers, percentages, dates and durations are formatted by Babel for `DASHBOARD_LOCALE`
(default `en`). Templates are autoescaped; user texts are shown with their language and
direction so Arabic, Farsi, Pashto and Urdu read right to left.
"""
from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional

from babel.dates import format_date, format_datetime, format_timedelta
from babel.numbers import format_decimal, format_percent
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot.i18n import is_rtl


def locale() -> str:
    """The Babel locale of the staff interface."""
    return os.environ.get("DASHBOARD_LOCALE", "en")


class Renderer:
    """Renders the dashboard's templates."""

    def __init__(self, folder: Path) -> None:
        self.locale = locale()
        self.env = Environment(loader=FileSystemLoader(str(folder)), autoescape=select_autoescape(["html", "svg"]),
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(num=self.number, pct=self.percent, date=self.date, datetime=self.datetime,
                                minutes=self.minutes)
        self.env.globals.update(text_dir=text_direction, locale=self.locale)

    def render(self, template: str, **values: Any) -> str:
        """The HTML of `template`."""
        return self.env.get_template(template).render(**values)

    def number(self, value: Any, digits: Optional[int] = None) -> str:
        """A number with grouping (`digits` fixes the decimals)."""
        if value is None or value == "":
            return "–"
        pattern = "#,##0" if digits == 0 else f"#,##0.{'0' * digits}" if digits else None
        return format_decimal(Decimal(str(value)) if not isinstance(value, int) else value,
                              format=pattern, locale=self.locale)

    def percent(self, value: Any) -> str:
        """A share such as 0.051 as "5.1%"."""
        if value is None:
            return "–"
        return format_percent(value, format="#,##0.0%", locale=self.locale)

    def date(self, value: Any, style: str = "medium") -> str:
        """A date (or a datetime's date)."""
        if value is None or value == "":
            return "–"
        if isinstance(value, str):
            value = dt.date.fromisoformat(value)
        return format_date(value, format=style, locale=self.locale)

    def datetime(self, value: Optional[dt.datetime]) -> str:
        """A moment, in UTC."""
        if value is None:
            return "–"
        return format_datetime(value, format="medium", tzinfo=dt.timezone.utc, locale=self.locale)

    def minutes(self, value: Optional[float]) -> str:
        """A duration given in minutes, such as "12 minutes" or "3 hours"."""
        if value is None:
            return "–"
        return format_timedelta(dt.timedelta(minutes=float(value)), threshold=1.5, locale=self.locale)


def text_direction(language: Optional[str]) -> str:
    """The `dir` attribute for a text in `language`: rtl, ltr, or auto when unknown."""
    if not language or language == "unknown":
        return "auto"
    return "rtl" if is_rtl(language) else "ltr"

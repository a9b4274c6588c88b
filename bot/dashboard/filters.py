"""The filters every page takes from its query string: date range, channel, language, programme.

Anything unexpected (a bad date, an unknown channel, an unknown parameter, a range the wrong
way round or longer than `MAX_DAYS`) raises `FilterError`, which the app answers with a 400.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple
from urllib.parse import urlencode

import yaml

CHANNELS = ("webchat", "telegram", "sms", "whatsapp")
UNKNOWN = "unknown"
DEFAULT_DAYS = 30
MAX_DAYS = 3 * 366
FILTER_NAMES = ("start", "end", "channel", "language", "programme")


class FilterError(ValueError):
    """A query string the dashboard cannot answer (the page responds 400).

    `code` names the problem (the error template words it), `name` and `value` say where.
    """

    def __init__(self, code: str, name: str = "", value: str = "") -> None:
        super().__init__(f"{code}: {name} {value}".strip())
        self.code, self.name, self.value = code, name, value[:40]


@lru_cache(maxsize=1)
def choices() -> Dict[str, Tuple[str, ...]]:
    """The values each segment filter accepts (besides "all")."""
    from bot.i18n import available_languages
    from bot.programme import load_all

    labels = yaml.safe_load((Path(__file__).resolve().parent.parent / "labels.yml").read_text(encoding="utf-8"))
    languages = sorted(set(available_languages()) | set(labels.get("languages", [])))
    return {"channel": CHANNELS + (UNKNOWN,), "language": tuple(languages) + (UNKNOWN,),
            "programme": tuple(sorted(load_all())) + (UNKNOWN,)}


@dataclass(frozen=True)
class Filters:
    """A validated selection: an inclusive date range and optional channel, language, programme."""

    start: dt.date
    end: dt.date
    channel: Optional[str] = None
    language: Optional[str] = None
    programme: Optional[str] = None

    @property
    def days(self) -> List[dt.date]:
        """Every day of the range, in order."""
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def segments(self) -> Dict[str, str]:
        """The segment filters that are set: {"channel": "sms", ...}."""
        return {name: value for name in ("channel", "language", "programme")
                if (value := getattr(self, name)) is not None}

    def query(self, **changes: Optional[str]) -> str:
        """This selection as a query string, with `changes` applied (None removes a filter)."""
        values = {"start": self.start.isoformat(), "end": self.end.isoformat(), **self.segments}
        for name, value in changes.items():
            if value is None:
                values.pop(name, None)
            else:
                values[name] = value
        return urlencode(values)


def _date(name: str, raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise FilterError("bad_date", name, raw) from None


def parse(args: Mapping[str, List[str]], today: dt.date, extra: Iterable[str] = ()) -> Filters:
    """Validates a query string (`{name: [values]}`) into `Filters`; `extra` names other allowed keys."""
    allowed: FrozenSet[str] = frozenset(FILTER_NAMES) | frozenset(extra)
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise FilterError("unknown_parameter", unknown[0])
    single = {}
    for name, values in args.items():
        if len(values) != 1:
            raise FilterError("repeated_parameter", name)
        single[name] = values[0].strip()
    end = _date("end", single["end"]) if single.get("end") else today
    start = _date("start", single["start"]) if single.get("start") else end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise FilterError("reversed_range")
    if (end - start).days >= MAX_DAYS:
        raise FilterError("long_range", str(MAX_DAYS))
    segments = {}
    for name, accepted in choices().items():
        value = single.get(name) or None
        if value in (None, "all"):
            continue
        if value not in accepted:
            raise FilterError("unknown_value", name, value)
        segments[name] = value
    return Filters(start, end, **segments)

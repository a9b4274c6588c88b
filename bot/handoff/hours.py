"""When an advisor can answer: the programme's office hours, in the programme's time zone."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from bot.programme import Programme

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Wait:
    """What to tell a returnee who asked for a person: the usual wait now, or when the office opens."""

    open_now: bool
    minutes: int
    next_open: Optional[dt.datetime] = None


def _spans(hours: Dict[str, str], day: dt.date, zone) -> List[Tuple[dt.datetime, dt.datetime]]:
    spans = []
    for span in str(hours.get(DAYS[day.weekday()]) or "").split(","):
        start, _, end = span.strip().partition("-")
        if not start or not end:
            continue
        begin = dt.datetime.combine(day, dt.time.fromisoformat(start.strip()), tzinfo=zone)
        spans.append((begin, dt.datetime.combine(day, dt.time.fromisoformat(end.strip()), tzinfo=zone)))
    return spans


def wait(programme: Programme, now: dt.datetime) -> Wait:
    """The expected wait for an advisor at `now` (a time with its zone)."""
    zone = programme.timezone
    local = now.astimezone(zone)
    hours = programme.main_office.get("hours") or {}
    minutes = int((programme.data.get("advisors") or {}).get("response_minutes") or 30)
    for offset in range(8):
        for begin, end in _spans(hours, local.date() + dt.timedelta(days=offset), zone):
            if begin <= local < end:
                return Wait(True, minutes)
            if local < begin:
                return Wait(False, minutes, begin)
    return Wait(True, minutes)  # no hours configured: advisors are assumed to be around

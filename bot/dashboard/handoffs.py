"""Handoff figures, read from the `tickets` table when the handoff service has created it.

Columns relied on: id, sender_id, reason, channel, language, status, created_at, claimed_at,
first_reply_at, closed_at, advisor. A ticket is open until `closed_at` is set, and waiting
until an advisor claims it. Until the table exists, `handoffs()` returns None and the page
says there is no handoff data yet.
"""
from __future__ import annotations

import datetime as dt
from typing import Dict, List, Optional, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.dashboard.filters import Filters
from bot.dashboard.queries import Page, Table, day_bounds, percentile
from bot.storage import UTCDateTime, utcnow

TIMES = ("created_at", "claimed_at", "first_reply_at", "closed_at")
NEEDED = ("id", "sender_id", "reason", "channel", "language", "status", "advisor") + TIMES


def tickets_table(db: Connection) -> Optional[sa.Table]:
    """The `tickets` table with its time columns read as UTC, or None if absent or incomplete."""
    inspector = sa.inspect(db)
    if not inspector.has_table("tickets"):
        return None
    present = {column["name"] for column in inspector.get_columns("tickets")}
    if not set(NEEDED) <= present:
        return None
    return sa.Table("tickets", sa.MetaData(), *(sa.Column(name, UTCDateTime) for name in TIMES),
                    autoload_with=db)


def _minutes(start: Optional[dt.datetime], end: Optional[dt.datetime]) -> Optional[float]:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds() / 60)


def _stats(values: List[float]) -> Tuple[Optional[float], Optional[float]]:
    values = sorted(v for v in values if v is not None)
    median, p90 = percentile(values, 0.5), percentile(values, 0.9)
    return (round(median, 1) if median is not None else None, round(p90, 1) if p90 is not None else None)


def handoffs(db: Connection, f: Filters, now: Optional[dt.datetime] = None) -> Optional[Page]:
    """Requests by reason, times to first reply and to resolution, the open queue, per advisor."""
    t = tickets_table(db)
    if t is None:
        return None
    now = now or utcnow()
    start, end = day_bounds(f)
    where = [t.c.created_at >= start, t.c.created_at < end]
    segments = [t.c[name] == value for name, value in f.segments.items() if name in ("channel", "language")]
    rows = db.execute(sa.select(t.c.reason, t.c.advisor, t.c.created_at, t.c.first_reply_at, t.c.closed_at)
                      .where(*where, *segments)).all()
    reasons: Dict[str, int] = {}
    advisors: Dict[str, Dict[str, List]] = {}
    replies, resolutions = [], []
    for row in rows:
        reasons[row.reason or "unknown"] = reasons.get(row.reason or "unknown", 0) + 1
        reply, resolution = _minutes(row.created_at, row.first_reply_at), _minutes(row.created_at, row.closed_at)
        replies.append(reply)
        resolutions.append(resolution)
        if row.advisor:
            entry = advisors.setdefault(row.advisor, {"reply": [], "resolution": [], "count": []})
            entry["count"].append(1)
            entry["reply"].append(reply)
            entry["resolution"].append(resolution)
    reply_median, reply_p90 = _stats(replies)
    resolution_median, resolution_p90 = _stats(resolutions)
    page = Page(totals={"requests": len(rows), "reply_median": reply_median, "reply_p90": reply_p90,
                        "resolution_median": resolution_median, "resolution_p90": resolution_p90})
    page.tables["reasons"] = Table(("reason", "requests"),
                                   sorted(reasons.items(), key=lambda item: (-item[1], item[0])))
    page.tables["advisors"] = Table(("advisor", "tickets", "reply_median_minutes", "resolution_median_minutes"), [
        (name, len(entry["count"]), _stats(entry["reply"])[0], _stats(entry["resolution"])[0])
        for name, entry in sorted(advisors.items(), key=lambda item: -len(item[1]["count"]))])
    page.tables["queue"] = _queue(db, t, segments, now)
    page.totals["open"] = sum(row[2] for row in page.tables["queue"].rows)
    page.totals["waiting"] = sum(row[3] for row in page.tables["queue"].rows)
    return page


def _queue(db: Connection, t: sa.Table, segments: List, now: dt.datetime) -> Table:
    """Open tickets now (whatever the date range) by channel and language, with the oldest wait."""
    rows = db.execute(sa.select(t.c.channel, t.c.language, t.c.claimed_at, t.c.created_at)
                      .where(t.c.closed_at.is_(None), *segments)).all()
    groups: Dict[Tuple[str, str], List] = {}
    for row in rows:
        entry = groups.setdefault((row.channel or "unknown", row.language or "unknown"), [0, 0, 0.0])
        entry[0] += 1
        if row.claimed_at is None:
            entry[1] += 1
            entry[2] = max(entry[2], _minutes(row.created_at, now) or 0.0)
    return Table(("channel", "language", "open", "waiting", "oldest_wait_minutes"),
                 [(channel, language, n, waiting, round(oldest, 1))
                  for (channel, language), (n, waiting, oldest) in sorted(groups.items())])


def transcript_window(db: Connection, ticket_id: int) -> Optional[Tuple[str, float, float]]:
    """The sender and the time window of a ticket's conversation (for the admin transcript)."""
    t = tickets_table(db)
    if t is None:
        return None
    row = db.execute(sa.select(t.c.sender_id, t.c.created_at, t.c.closed_at).where(t.c.id == ticket_id)).first()
    if row is None:
        return None
    begin = row.created_at.timestamp() - 3600
    finish = (row.closed_at or utcnow()).timestamp() + 600
    return row.sender_id, begin, finish


def recent(db: Connection, f: Filters, limit: int = 50) -> Table:
    """The latest tickets of the range, without their sender (admins open each transcript)."""
    t = tickets_table(db)
    start, end = day_bounds(f)
    segments = [t.c[name] == value for name, value in f.segments.items() if name in ("channel", "language")]
    rows = db.execute(sa.select(t.c.id, t.c.created_at, t.c.reason, t.c.channel, t.c.language, t.c.status,
                                t.c.advisor).where(t.c.created_at >= start, t.c.created_at < end, *segments)
                      .order_by(t.c.created_at.desc()).limit(limit)).all()
    return Table(("id", "created_at", "reason", "channel", "language", "status", "advisor"),
                 [tuple(row) for row in rows])

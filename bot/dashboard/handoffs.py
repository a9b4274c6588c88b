"""Handoff figures, read from the handoff service's `tickets` table (`bot.handoff.tickets`).

A ticket is `open` (waiting for an advisor), `claimed` (an advisor holds it), `released`
(handed back to the bot: by its advisor, with the "bye" reply, or by the desk after a
silence) or `closed` (ended by an advisor with a resolution tag). Open and claimed tickets
make the queue; released and closed ones have ended, and their resolution time runs from the
request to that end. The time to first reply runs from the request to the advisor's first
message. Until the migrations have created the table, `handoffs()` returns None and the page
says there is no handoff data yet.
"""
from __future__ import annotations

import datetime as dt
from typing import Dict, List, Optional, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.dashboard.filters import Filters
from bot.dashboard.models import advisors as advisors_table
from bot.dashboard.queries import Page, Table, day_bounds, percentile
from bot.handoff.tickets import ACTIVE, CLAIMED, CLOSED, OPEN, RELEASED, Ticket
from bot.storage import utcnow

STATUSES = (OPEN, CLAIMED, RELEASED, CLOSED)
ADVISOR_COLUMNS = ("advisor", "tickets", "open_now", "reply_median_minutes", "reply_p90_minutes",
                   "resolution_median_minutes", "resolution_p90_minutes")


def tickets_table(db: Connection) -> Optional[sa.Table]:
    """The `tickets` table, or None before the migrations have created it."""
    return Ticket.__table__ if sa.inspect(db).has_table("tickets") else None


def _segments(t: sa.Table, f: Filters) -> List:
    """The channel, language and programme filters on tickets ("unknown" also matches no value)."""
    found = []
    for name, value in f.segments.items():
        column = t.c[name]
        found.append(sa.or_(column == value, column.is_(None)) if value == "unknown" else column == value)
    return found


def _minutes(start: Optional[dt.datetime], end: Optional[dt.datetime]) -> Optional[float]:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds() / 60)


def ended_at(status: str, released_at: Optional[dt.datetime], closed_at: Optional[dt.datetime]
             ) -> Optional[dt.datetime]:
    """When a ticket ended (closed, or handed back to the bot); None while it is open or claimed."""
    if status == CLOSED:
        return closed_at
    if status == RELEASED:
        return released_at
    return None


def stats(values: List[Optional[float]]) -> Tuple[Optional[float], Optional[float]]:
    """The median and the 90th percentile of the known values, in minutes to one decimal."""
    values = sorted(v for v in values if v is not None)
    median, p90 = percentile(values, 0.5), percentile(values, 0.9)
    return (round(median, 1) if median is not None else None, round(p90, 1) if p90 is not None else None)


def handoffs(db: Connection, f: Filters, now: Optional[dt.datetime] = None) -> Optional[Page]:
    """Requests by reason and outcome, times to first reply and to resolution, the open queue,
    and the same per advisor."""
    t = tickets_table(db)
    if t is None:
        return None
    now = now or utcnow()
    start, end = day_bounds(f)
    segments = _segments(t, f)
    rows = db.execute(sa.select(t.c.reason, t.c.status, t.c.advisor_id, t.c.advisor, t.c.created_at,
                                t.c.first_reply_at, t.c.released_at, t.c.closed_at)
                      .where(t.c.created_at >= start, t.c.created_at < end, *segments)).all()
    reasons: Dict[str, int] = {}
    outcomes: Dict[str, int] = {}
    per_advisor: Dict[object, Dict[str, List]] = {}
    names: Dict[object, str] = {}
    replies, resolutions = [], []
    for row in rows:
        reasons[row.reason or "unknown"] = reasons.get(row.reason or "unknown", 0) + 1
        outcomes[row.status] = outcomes.get(row.status, 0) + 1
        reply = _minutes(row.created_at, row.first_reply_at)
        resolution = _minutes(row.created_at, ended_at(row.status, row.released_at, row.closed_at))
        replies.append(reply)
        resolutions.append(resolution)
        key = row.advisor_id if row.advisor_id is not None else row.advisor
        if key is not None:
            entry = per_advisor.setdefault(key, {"reply": [], "resolution": []})
            entry["reply"].append(reply)
            entry["resolution"].append(resolution)
            if row.advisor:
                names.setdefault(key, row.advisor)
    reply_median, reply_p90 = stats(replies)
    resolution_median, resolution_p90 = stats(resolutions)
    page = Page(totals={"requests": len(rows), "reply_median": reply_median, "reply_p90": reply_p90,
                        "resolution_median": resolution_median, "resolution_p90": resolution_p90})
    page.tables["reasons"] = Table(("reason", "requests"),
                                   sorted(reasons.items(), key=lambda item: (-item[1], item[0])))
    page.tables["outcomes"] = Table(("status", "tickets"),
                                    [(status, outcomes[status]) for status in STATUSES if status in outcomes])
    held = dict(db.execute(sa.select(t.c.advisor_id, sa.func.count()).where(
        t.c.status == CLAIMED, t.c.advisor_id.isnot(None), *segments).group_by(t.c.advisor_id)).all())
    page.tables["advisors"] = _advisors(db, per_advisor, held, names)
    page.tables["queue"] = _queue(db, t, segments, now)
    page.totals["open"] = sum(row[2] for row in page.tables["queue"].rows)
    page.totals["waiting"] = sum(row[3] for row in page.tables["queue"].rows)
    return page


def _advisors(db: Connection, per_advisor: Dict[object, Dict[str, List]], held: Dict[int, int],
              names: Dict[object, str]) -> Table:
    """One row per advisor: tickets of the range, tickets held now, reply and resolution times."""
    ids = [key for key in (*per_advisor, *held) if isinstance(key, int)]
    if ids:
        registered = db.execute(sa.select(advisors_table.c.id, advisors_table.c.name)
                                .where(advisors_table.c.id.in_(set(ids)))).all()
        names.update({row.id: row.name for row in registered})
    rows = []
    for key in dict.fromkeys((*per_advisor, *held)):
        entry = per_advisor.get(key, {"reply": [], "resolution": []})
        name = names.get(key) or (f"#{key}" if isinstance(key, int) else str(key))
        rows.append((name, len(entry["reply"]), held.get(key, 0), *stats(entry["reply"]),
                     *stats(entry["resolution"])))
    rows.sort(key=lambda row: (-row[1], -row[2], row[0]))
    return Table(ADVISOR_COLUMNS, rows)


def _queue(db: Connection, t: sa.Table, segments: List, now: dt.datetime) -> Table:
    """Open and claimed tickets now (whatever the date range) by channel and language, with the
    longest wait of those nobody has claimed yet."""
    rows = db.execute(sa.select(t.c.channel, t.c.language, t.c.status, t.c.created_at)
                      .where(t.c.status.in_(ACTIVE), *segments)).all()
    groups: Dict[Tuple[str, str], List] = {}
    for row in rows:
        entry = groups.setdefault((row.channel or "unknown", row.language or "unknown"), [0, 0, 0.0])
        entry[0] += 1
        if row.status == OPEN:
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
    row = db.execute(sa.select(t.c.sender_id, t.c.status, t.c.created_at, t.c.released_at, t.c.closed_at)
                     .where(t.c.id == ticket_id)).first()
    if row is None:
        return None
    begin = row.created_at.timestamp() - 3600
    finish = (ended_at(row.status, row.released_at, row.closed_at) or utcnow()).timestamp() + 600
    return row.sender_id, begin, finish


def recent(db: Connection, f: Filters, limit: int = 50) -> Table:
    """The latest tickets of the range, without their sender (admins open each transcript)."""
    t = tickets_table(db)
    start, end = day_bounds(f)
    a = advisors_table
    advisor = sa.func.coalesce(t.c.advisor, a.c.name).label("advisor")
    rows = db.execute(sa.select(t.c.id, t.c.created_at, t.c.reason, t.c.channel, t.c.language, t.c.status, advisor)
                      .select_from(t.outerjoin(a, a.c.id == t.c.advisor_id))
                      .where(t.c.created_at >= start, t.c.created_at < end, *_segments(t, f))
                      .order_by(t.c.created_at.desc()).limit(limit)).all()
    return Table(("id", "created_at", "reason", "channel", "language", "status", "advisor"),
                 [tuple(row) for row in rows])

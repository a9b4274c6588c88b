"""The figures of each dashboard page, read from the aggregates and the project's tables.

Every function takes a connection and validated `Filters` and returns plain data: named
`Table`s (what the page shows and the CSV downloads contain) and totals. Nothing here
returns a sender id.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.dashboard import models as m
from bot.dashboard.etl import timezone
from bot.dashboard.filters import Filters

SPLITS = ("channel", "language", "programme")


@dataclass
class Table:
    """Rows under named columns; the column names are the CSV header."""

    columns: Tuple[str, ...]
    rows: List[Tuple] = field(default_factory=list)

    def column(self, name: str) -> List[Any]:
        """The values of one column, in row order."""
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def dicts(self) -> List[Dict[str, Any]]:
        """The rows as dictionaries."""
        return [dict(zip(self.columns, row)) for row in self.rows]


@dataclass
class Page:
    """Everything one page shows: its tables and its headline figures."""

    tables: Dict[str, Table] = field(default_factory=dict)
    totals: Dict[str, Any] = field(default_factory=dict)
    extra: Dict[str, Any] = field(default_factory=dict)


def segment_filter(table: sa.Table, f: Filters, day: Optional[sa.Column] = None) -> List:
    """WHERE conditions of the date range and the segment filters on an aggregate table."""
    day = day if day is not None else table.c.day
    return [day >= f.start, day <= f.end, *(table.c[name] == value for name, value in f.segments.items())]


def day_bounds(f: Filters) -> Tuple[dt.datetime, dt.datetime]:
    """The range as [start, end) instants in the dashboard's time zone."""
    zone = timezone()
    start = dt.datetime.combine(f.start, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(f.end + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start, end


def percentile(values: Sequence, share: float):
    """The `share` percentile (0..1) of sorted `values`, interpolated; None when empty."""
    if not values:
        return None
    position = (len(values) - 1) * share
    low = int(position)
    high = min(low + 1, len(values) - 1)
    fraction = position - low
    if isinstance(values[low], Decimal):
        return values[low] + (values[high] - values[low]) * Decimal(str(fraction))
    return values[low] + (values[high] - values[low]) * fraction


def _by_day(f: Filters, rows: Iterable[Tuple], width: int) -> List[Tuple]:
    found = {row[0]: tuple(row[1:]) for row in rows}
    zero = (0,) * width
    return [(day, *found.get(day, zero)) for day in f.days]


def _ratio(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


# -- overview -----------------------------------------------------------------------------

def overview(db: Connection, f: Filters, split: str = "channel") -> Page:
    """Conversations, active, new and returning users per day; the split by channel, language, programme.

    A user is new on the first day they ever wrote, returning on every later day they write.
    Over the range, new users first wrote in it; returning users wrote on a day after their first.
    """
    t = m.dash_user_days
    where = segment_filter(t, f)
    new = sa.func.sum(sa.case((t.c.is_new, 1), else_=0))
    daily_rows = db.execute(
        sa.select(t.c.day, sa.func.sum(t.c.conversations), sa.func.count(), new, sa.func.sum(t.c.messages),
                  sa.func.sum(t.c.fallbacks))
        .where(*where).group_by(t.c.day).order_by(t.c.day)).all()
    daily = Table(("day", "conversations", "active_users", "new_users", "returning_users", "messages", "fallbacks"))
    for day, conversations, active, new_users, messages, fallbacks in _by_day(f, daily_rows, 5):
        daily.rows.append((day, int(conversations or 0), int(active or 0), int(new_users or 0),
                           int((active or 0) - (new_users or 0)), int(messages or 0), int(fallbacks or 0)))
    totals_row = db.execute(
        sa.select(sa.func.count(sa.distinct(t.c.sender_key)),
                  sa.func.count(sa.distinct(sa.case((t.c.is_new, t.c.sender_key)))),
                  sa.func.count(sa.distinct(sa.case((sa.not_(t.c.is_new), t.c.sender_key)))),
                  sa.func.coalesce(sa.func.sum(t.c.conversations), 0), sa.func.coalesce(sa.func.sum(t.c.messages), 0),
                  sa.func.coalesce(sa.func.sum(t.c.fallbacks), 0)).where(*where)).one()
    active, new_users, returning, conversations, messages, fallbacks = (int(v or 0) for v in totals_row)
    page = Page(totals={"active_users": active, "new_users": new_users, "returning_users": returning,
                        "conversations": conversations, "messages": messages,
                        "fallback_rate": _ratio(fallbacks, messages)})
    page.tables["daily"] = daily
    for name in SPLITS:
        column = t.c[name]
        rows = db.execute(
            sa.select(column, sa.func.count(sa.distinct(t.c.sender_key)), sa.func.sum(t.c.conversations),
                      sa.func.sum(t.c.messages))
            .where(*where).group_by(column).order_by(sa.func.sum(t.c.conversations).desc(), column)).all()
        page.tables[f"by_{name}"] = Table((name, "active_users", "conversations", "messages"),
                                          [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows])
    page.tables["daily_split"] = _daily_split(db, f, where, split)
    page.extra["split"] = split
    return page


def _daily_split(db: Connection, f: Filters, where: List, split: str) -> Table:
    t = m.dash_user_days
    column = t.c[split]
    rows = db.execute(sa.select(t.c.day, column, sa.func.sum(t.c.conversations), sa.func.count())
                      .where(*where).group_by(t.c.day, column)).all()
    values = sorted({row[1] for row in rows})
    found = {(row[0], row[1]): (int(row[2]), int(row[3])) for row in rows}
    table = Table(("day", split, "conversations", "active_users"))
    for day in f.days:
        for value in values:
            conversations, active = found.get((day, value), (0, 0))
            table.rows.append((day, value, conversations, active))
    return table


# -- what people ask ----------------------------------------------------------------------

def questions(db: Connection, f: Filters, limit: int = 100) -> Page:
    """Labels and FAQ topics by volume, the fallback rate per day, the unanswered questions."""
    from bot.i18n import translations

    t = m.dash_label_days
    rows = db.execute(sa.select(t.c.label, sa.func.sum(t.c.messages)).where(*segment_filter(t, f))
                      .group_by(t.c.label).order_by(sa.func.sum(t.c.messages).desc(), t.c.label)).all()
    total = sum(int(r[1]) for r in rows)
    labels = Table(("label", "messages", "share"), [(r[0], int(r[1]), _ratio(int(r[1]), total)) for r in rows])
    english = translations("en")
    topics = Table(("topic", "title", "messages", "share_of_faq"))
    faq_total = sum(n for label, n, _ in labels.rows if label.startswith("faq/"))
    for label, count, _ in labels.rows:
        if label.startswith("faq/"):
            key = "topic." + label[4:]
            title = english.gettext(key)
            topics.rows.append((label, "" if title == key else title, count, _ratio(count, faq_total)))
    u = m.dash_user_days
    daily_rows = db.execute(sa.select(u.c.day, sa.func.sum(u.c.fallbacks), sa.func.sum(u.c.messages))
                            .where(*segment_filter(u, f)).group_by(u.c.day)).all()
    fallback = Table(("day", "fallbacks", "messages", "fallback_rate"))
    for day, fallbacks, messages in _by_day(f, daily_rows, 2):
        fallback.rows.append((day, int(fallbacks or 0), int(messages or 0), _ratio(fallbacks or 0, messages or 0)))
    fallbacks = sum(fallback.column("fallbacks"))
    page = Page(totals={"messages": total, "fallbacks": fallbacks,
                        "fallback_rate": _ratio(fallbacks, sum(fallback.column("messages")))})
    page.tables.update(labels=labels, topics=topics, fallback_daily=fallback)
    page.tables["unanswered"], page.totals["unanswered_open"] = unanswered(db, f, limit)
    return page


def _unanswered_where(f: Filters) -> List:
    q = m.unanswered_table()
    start, end = day_bounds(f)
    where = [q.c.created_at >= start, q.c.created_at < end, q.c.handled == sa.false()]
    if f.language:
        where.append(q.c.language == f.language if f.language != "unknown" else q.c.language.is_(None))
    if f.programme:
        where.append(q.c.programme == f.programme if f.programme != "unknown" else q.c.programme.is_(None))
    return where


def unanswered(db: Connection, f: Filters, limit: int = 100) -> Tuple[Table, int]:
    """Open unanswered questions grouped by similar text, most frequent first; and the open count.

    Each row is (id of the latest, text, language, reason, last date, count of similar ones).
    """
    q, k = m.unanswered_table(), m.dash_unanswered
    where = _unanswered_where(f)
    joined = q.join(k, k.c.question_id == q.c.id)
    groups = (sa.select(k.c.similar_key, sa.func.max(q.c.id).label("latest"), sa.func.count().label("similar"))
              .select_from(joined).where(*where).group_by(k.c.similar_key)
              .order_by(sa.func.count().desc(), sa.func.max(q.c.id).desc()).limit(limit)).subquery()
    rows = db.execute(sa.select(q.c.id, q.c.text, q.c.language, q.c.reason, q.c.programme, q.c.created_at,
                                groups.c.similar).join(groups, groups.c.latest == q.c.id)
                      .order_by(groups.c.similar.desc(), q.c.id.desc())).all()
    table = Table(("id", "text", "language", "reason", "programme", "last_asked", "similar"),
                  [(r.id, r.text, r.language or "", r.reason, r.programme or "",
                    r.created_at.astimezone(timezone()).date(), int(r.similar)) for r in rows])
    open_count = db.execute(sa.select(sa.func.count()).select_from(q).where(*where)).scalar_one()
    return table, int(open_count)


def mark_handled(db: Connection, question_id: int) -> int:
    """Marks a question and every open one similar to it handled; returns how many."""
    q, k = m.unanswered_table(), m.dash_unanswered
    key = db.execute(sa.select(k.c.similar_key).where(k.c.question_id == question_id)).scalar()
    if key is None:
        result = db.execute(sa.update(q).where(q.c.id == question_id, q.c.handled == sa.false()).values(handled=True))
    else:
        similar = sa.select(k.c.question_id).where(k.c.similar_key == key)
        result = db.execute(sa.update(q).where(q.c.id.in_(similar), q.c.handled == sa.false()).values(handled=True))
    return result.rowcount


# -- the repayment calculator ---------------------------------------------------------------

def calculator(db: Connection, f: Filters) -> Page:
    """Calculator uses per day, amounts and terms, products; reminders by status."""
    c = m.dash_calculations
    where = segment_filter(c, f)
    daily_rows = db.execute(sa.select(c.c.day, sa.func.count()).where(*where).group_by(c.c.day)).all()
    uses = Table(("day", "calculations"), [(day, int(n)) for day, n in _by_day(f, daily_rows, 1)])
    amounts: Dict[Tuple[str, str], List[Decimal]] = {}
    for programme, currency, amount in db.execute(
            sa.select(c.c.programme, c.c.currency, c.c.amount).where(*where, c.c.amount.isnot(None))):
        amounts.setdefault((programme, currency), []).append(amount)
    amount_table = Table(("programme", "currency", "calculations", "p25", "median", "p75", "p90"))
    for (programme, currency), values in sorted(amounts.items()):
        values.sort()
        amount_table.rows.append((programme, currency, len(values),
                                  *(percentile(values, share).quantize(Decimal("1")) for share in (.25, .5, .75, .9))))
    terms = Table(("frequency", "repayments", "calculations"), [
        (r[0], r[1], int(r[2])) for r in db.execute(
            sa.select(c.c.frequency, c.c.repayments, sa.func.count()).where(*where)
            .group_by(c.c.frequency, c.c.repayments).order_by(c.c.frequency, c.c.repayments))])
    products = Table(("programme", "product", "calculations"), [
        (r[0], r[1], int(r[2])) for r in db.execute(
            sa.select(c.c.programme, c.c.product, sa.func.count()).where(*where)
            .group_by(c.c.programme, c.c.product).order_by(sa.func.count().desc()))])
    page = Page(totals={"calculations": sum(uses.column("calculations")),
                        "users": int(db.execute(sa.select(sa.func.count(sa.distinct(c.c.sender_key)))
                                                .where(*where)).scalar_one())})
    page.tables.update(uses=uses, amounts=amount_table, terms=terms, products=products)
    page.tables["reminders"], page.totals["opted_out"] = reminders(db, f)
    return page


def reminders(db: Connection, f: Filters) -> Tuple[Table, int]:
    """Reminders due to be sent in the range, by status; and how many of their users opted out."""
    from bot.reminders import Reminder
    from bot.storage import Profile

    r, p = Reminder.__table__, Profile.__table__
    start, end = day_bounds(f)
    where = [r.c.send_at >= start, r.c.send_at < end]
    if f.channel:
        where.append(r.c.channel == f.channel)
    if f.programme:
        where.append(r.c.programme == f.programme)
    if f.language:
        where.append(p.c.language == f.language if f.language != "unknown" else p.c.language.is_(None))
    joined = r.outerjoin(p, p.c.sender_id == r.c.sender_id)
    rows = db.execute(sa.select(r.c.status, sa.func.count()).select_from(joined).where(*where)
                      .group_by(r.c.status).order_by(r.c.status)).all()
    opted_out = db.execute(sa.select(sa.func.count(sa.distinct(r.c.sender_id))).select_from(joined)
                           .where(*where, p.c.opted_out == sa.true())).scalar_one()
    return Table(("status", "reminders"), [(status, int(n)) for status, n in rows]), int(opted_out)


# -- the funnel ---------------------------------------------------------------------------

FUNNEL_STEPS = ("loan", "calc", "advisor")


def funnel(db: Connection, f: Filters) -> Page:
    """Users who asked about loans, of them who then used the calculator, then asked for an advisor."""
    s = m.dash_steps
    where = segment_filter(s, f)
    loan = (sa.select(s.c.sender_key, sa.func.min(s.c.ts).label("ts")).where(*where, s.c.step == "loan")
            .group_by(s.c.sender_key).subquery("loan"))
    calc_steps = s.alias("calc_steps")
    calc = (sa.select(calc_steps.c.sender_key, sa.func.min(calc_steps.c.ts).label("ts"))
            .join(loan, loan.c.sender_key == calc_steps.c.sender_key)
            .where(*segment_filter(calc_steps, f), calc_steps.c.step == "calc", calc_steps.c.ts >= loan.c.ts)
            .group_by(calc_steps.c.sender_key).subquery("calc"))
    advisor_steps = s.alias("advisor_steps")
    advisor = (sa.select(advisor_steps.c.sender_key).distinct()
               .join(calc, calc.c.sender_key == advisor_steps.c.sender_key)
               .where(*segment_filter(advisor_steps, f), advisor_steps.c.step == "advisor",
                      advisor_steps.c.ts >= calc.c.ts).subquery("advisor"))
    counts = db.execute(sa.select(
        sa.select(sa.func.count()).select_from(loan).scalar_subquery(),
        sa.select(sa.func.count()).select_from(calc).scalar_subquery(),
        sa.select(sa.func.count()).select_from(advisor).scalar_subquery())).one()
    first = counts[0]
    table = Table(("step", "users", "share_of_previous", "share_of_first"))
    previous = None
    for step, count in zip(FUNNEL_STEPS, counts):
        table.rows.append((step, int(count), _ratio(count, previous) if previous is not None else 1.0 if count else 0.0,
                           _ratio(count, first)))
        previous = count
    return Page(tables={"funnel": table}, totals={"loan": counts[0], "calc": counts[1], "advisor": counts[2]})

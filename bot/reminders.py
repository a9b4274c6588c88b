"""Repayment reminders: stored in the database, sent once each by the reminder worker.

A reminder is scheduled at the programme's reminder hour, `days_before` a due date, in the
programme's time zone and never in its quiet hours. The worker claims due reminders with a
lease (a conditional UPDATE, so several workers can run side by side on PostgreSQL or SQLite)
and asks Rasa to trigger the `EXTERNAL_reminder` intent on the conversation. The action that
renders it marks the reminder sent in the same step (`mark_sent` succeeds once), so a worker
killed between claiming and sending neither loses the reminder (its lease expires and another
worker takes it) nor sends it twice.
"""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Iterable, List, Optional, Sequence

import sqlalchemy as sa

from bot.programme import Programme
from bot.storage import Base, DecimalString, UTCDateTime, session, utcnow

PENDING, CLAIMED, SENT, CANCELLED, FAILED = "pending", "claimed", "sent", "cancelled", "failed"
MAX_ATTEMPTS = 5


class Reminder(Base):
    """One reminder of one instalment for one user."""

    __tablename__ = "reminders"
    id = sa.Column(sa.Integer, primary_key=True)
    sender_id = sa.Column(sa.String(128), nullable=False, index=True)
    channel = sa.Column(sa.String(32), nullable=False)
    programme = sa.Column(sa.String(64), nullable=False)
    due_date = sa.Column(sa.Date, nullable=False)
    amount = sa.Column(DecimalString, nullable=False)
    currency = sa.Column(sa.String(3), nullable=False)
    send_at = sa.Column(UTCDateTime, nullable=False, index=True)
    status = sa.Column(sa.String(16), nullable=False, default=PENDING, index=True)
    lease_owner = sa.Column(sa.String(64))
    lease_until = sa.Column(UTCDateTime)
    attempts = sa.Column(sa.Integer, nullable=False, default=0)
    sent_at = sa.Column(UTCDateTime)
    last_error = sa.Column(sa.String(200))
    created_at = sa.Column(UTCDateTime, nullable=False, default=utcnow)


def _parse_span(span: str) -> tuple:
    start, end = (dt.time.fromisoformat(t) for t in span.split("-"))
    return start, end


def in_quiet_hours(moment: dt.datetime, quiet: str) -> bool:
    """Whether a local time falls in quiet hours such as "21:00-08:00" (which cross midnight)."""
    start, end = _parse_span(quiet)
    now = moment.timetz().replace(tzinfo=None)
    return (start <= now or now < end) if start > end else (start <= now < end)


def next_allowed(moment: dt.datetime, quiet: str) -> dt.datetime:
    """`moment`, or the end of the quiet hours it falls in."""
    if not in_quiet_hours(moment, quiet):
        return moment
    _, end = _parse_span(quiet)
    candidate = moment.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    return candidate if candidate > moment else candidate + dt.timedelta(days=1)


def send_time(due: dt.date, programme: Programme, now: dt.datetime) -> Optional[dt.datetime]:
    """When to remind of a payment due on `due` (UTC), or None when the due date has passed."""
    settings = programme.data["reminders"]
    zone = programme.timezone
    local_now = now.astimezone(zone)
    if due < local_now.date():
        return None
    hour = dt.time.fromisoformat(settings["hour"])
    planned = dt.datetime.combine(due - dt.timedelta(days=settings["days_before"]), hour, tzinfo=zone)
    planned = max(planned, local_now)
    return next_allowed(planned, settings["quiet_hours"]).astimezone(dt.timezone.utc)


def schedule(sender_id: str, channel: str, programme: Programme,
             payments: Iterable[tuple], now: Optional[dt.datetime] = None) -> List[Reminder]:
    """Replaces the user's future reminders by one per `(due_date, amount)` payment still ahead."""
    now = now or utcnow()
    created = []
    with session() as db, db.begin():
        _cancel(db, sender_id)
        for due, amount in payments:
            at = send_time(due, programme, now)
            if at is None:
                continue
            reminder = Reminder(sender_id=sender_id, channel=channel, programme=programme.id, due_date=due,
                                amount=Decimal(str(amount)), currency=programme.currency, send_at=at)
            db.add(reminder)
            created.append(reminder)
    return created


def _cancel(db, sender_id: str) -> int:
    result = db.execute(
        sa.update(Reminder)
        .where(Reminder.sender_id == sender_id, Reminder.status.in_([PENDING, CLAIMED, FAILED]))
        .values(status=CANCELLED, lease_owner=None, lease_until=None)
    )
    return result.rowcount


def cancel_all(sender_id: str) -> int:
    """Cancels every future reminder of the user; returns how many."""
    with session() as db, db.begin():
        return _cancel(db, sender_id)


def pending_for(sender_id: str) -> List[Reminder]:
    """The user's reminders still to send, earliest first."""
    with session() as db:
        return list(db.execute(
            sa.select(Reminder).where(Reminder.sender_id == sender_id, Reminder.status.in_([PENDING, CLAIMED]))
            .order_by(Reminder.send_at)).scalars())


def claim_due(worker: str, lease: dt.timedelta, limit: int = 20,
              now: Optional[dt.datetime] = None) -> List[Reminder]:
    """Claims up to `limit` due reminders for `worker` until the lease ends.

    A reminder whose previous lease expired (its worker died) is due again.
    """
    now = now or utcnow()
    due = sa.or_(Reminder.status == PENDING, sa.and_(Reminder.status == CLAIMED, Reminder.lease_until < now))
    with session() as db:
        candidates = db.execute(
            sa.select(Reminder.id).where(due, Reminder.send_at <= now).order_by(Reminder.send_at).limit(limit)
        ).scalars().all()
    claimed = []
    for reminder_id in candidates:
        with session() as db, db.begin():
            result = db.execute(
                sa.update(Reminder).where(Reminder.id == reminder_id, due)
                .values(status=CLAIMED, lease_owner=worker, lease_until=now + lease,
                        attempts=Reminder.attempts + 1)
            )
            if result.rowcount == 1:
                claimed.append(db.get(Reminder, reminder_id))
    return claimed


def mark_sent(reminder_id: int) -> bool:
    """Marks a reminder sent; True only the first time, so a reminder is rendered once."""
    with session() as db, db.begin():
        result = db.execute(
            sa.update(Reminder).where(Reminder.id == reminder_id, Reminder.status.in_([PENDING, CLAIMED]))
            .values(status=SENT, sent_at=utcnow(), lease_owner=None, lease_until=None)
        )
        return result.rowcount == 1


def release(reminder_id: int, worker: str, error: str, retry_in: dt.timedelta) -> None:
    """Gives a claimed reminder back after a failed send: retried later, or failed for good."""
    with session() as db, db.begin():
        reminder = db.get(Reminder, reminder_id)
        if reminder is None or reminder.status != CLAIMED or reminder.lease_owner != worker:
            return
        reminder.last_error = error[:200]
        reminder.lease_owner, reminder.lease_until = None, None
        if reminder.attempts >= MAX_ATTEMPTS:
            reminder.status = FAILED
        else:
            reminder.status = PENDING
            reminder.send_at = utcnow() + retry_in


def get(reminder_id: int) -> Optional[Reminder]:
    """One reminder by id."""
    with session() as db:
        return db.get(Reminder, reminder_id)


def new_worker_id() -> str:
    """A name for one worker process's leases."""
    return f"worker-{uuid.uuid4().hex[:10]}"

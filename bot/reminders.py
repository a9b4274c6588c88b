"""Repayment reminders: stored in the database, sent by the reminder worker through Rasa.

A reminder is scheduled at the programme's reminder hour, `days_before` a due date, in the
user's own time zone (the one of their phone number when the number has only one, else the
programme's), and never in the programme's quiet hours. The payments are those of the user's
actual loan when staff imported it (`bot.loan_book`), else those of the schedule they calculated.

Delivery is at least once, and once in every ordinary failure. The worker claims due reminders
with a lease (`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, a conditional UPDATE on
SQLite, so several workers run side by side), asks Rasa to trigger `EXTERNAL_reminder` on the
conversation, and marks the reminder sent only when Rasa answered 200 with the reminder in the
conversation: Rasa answers after the channel sent the message and the conversation was saved.
`action_send_reminder` only renders, and renders nothing when the conversation already holds
this reminder. So a crash of Rasa or of the worker between claim and send loses nothing (the
failed call gives the reminder back, or its lease expires) and a retry after a lost answer sends
nothing twice. What is left is a duplicate when Rasa dies after its channel sent the message and
before it saved the conversation: a second reminder is a small nuisance, a missed one can cost
the borrower a late fee, hence at least once rather than at most once.

    python -m bot.reminders import-loan --file loans.csv    # staff: a user's actual due dates
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import uuid
from decimal import Decimal
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Set, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import sqlalchemy as sa
from phonenumbers import timezone as phone_timezones

from bot.programme import Programme
from bot.storage import Base, DecimalString, UTCDateTime, engine, session, utcnow

PENDING, CLAIMED, SENT, CANCELLED, FAILED = "pending", "claimed", "sent", "cancelled", "failed"
MAX_ATTEMPTS = 5
REMINDER_INTENT, REMINDER_ACTION = "EXTERNAL_reminder", "action_send_reminder"


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


def zone_for(sender_id: str, programme: Programme) -> dt.tzinfo:
    """The user's time zone: their phone number's when it has exactly one, else the programme's.

    A returnee may still use a number from abroad (+33..., +49...) for a while; a country with
    several zones (+1, +7, +61) says nothing precise, so the programme's zone is used.
    """
    number = (sender_id or "").split(":", 1)[-1]
    if number.startswith("+"):
        try:
            zones = phone_timezones.time_zones_for_number(phonenumbers.parse(number, None))
        except phonenumbers.NumberParseException:
            zones = ()
        if len(zones) == 1 and zones[0] != phone_timezones.UNKNOWN_TIMEZONE:
            try:
                return ZoneInfo(zones[0])
            except ZoneInfoNotFoundError:
                pass
    return programme.timezone


def send_time(due: dt.date, programme: Programme, now: dt.datetime,
              zone: Optional[dt.tzinfo] = None) -> Optional[dt.datetime]:
    """When to remind of a payment due on `due` (UTC), or None when the due date has passed.

    The programme sets the hour, the days before and the quiet hours; they apply in `zone`,
    the user's time zone (default: the programme's).
    """
    settings = programme.data["reminders"]
    zone = zone or programme.timezone
    local_now = now.astimezone(zone)
    if due < local_now.date():
        return None
    hour = dt.time.fromisoformat(settings["hour"])
    planned = dt.datetime.combine(due - dt.timedelta(days=settings["days_before"]), hour, tzinfo=zone)
    planned = max(planned, local_now)
    return next_allowed(planned, settings["quiet_hours"]).astimezone(dt.timezone.utc)


def schedule(sender_id: str, channel: str, programme: Programme,
             payments: Iterable[tuple], now: Optional[dt.datetime] = None,
             zone: Optional[dt.tzinfo] = None) -> List[Reminder]:
    """Replaces the user's future reminders by one per `(due_date, amount)` payment still ahead.

    `zone` is the user's time zone (default: `zone_for` the sender).
    """
    return schedule_payments(sender_id, channel, [(programme, due, amount) for due, amount in payments],
                             now, zone)


def schedule_payments(sender_id: str, channel: str, payments: Iterable[Tuple[Programme, dt.date, Any]],
                      now: Optional[dt.datetime] = None, zone: Optional[dt.tzinfo] = None) -> List[Reminder]:
    """Replaces the user's future reminders by one per `(programme, due_date, amount)` still ahead."""
    now = now or utcnow()
    created = []
    with session() as db, db.begin():
        _cancel(db, sender_id)
        for programme, due, amount in payments:
            at = send_time(due, programme, now, zone or zone_for(sender_id, programme))
            if at is None:
                continue
            reminder = Reminder(sender_id=sender_id, channel=channel, programme=programme.id, due_date=due,
                                amount=Decimal(str(amount)), currency=programme.currency, send_at=at)
            db.add(reminder)
            created.append(reminder)
    return sorted(created, key=lambda r: r.send_at)


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


def _due(now: dt.datetime):
    """Reminders a worker may claim: pending, or claimed by a worker whose lease ended."""
    return sa.and_(Reminder.send_at <= now, sa.or_(
        Reminder.status == PENDING, sa.and_(Reminder.status == CLAIMED, Reminder.lease_until < now)))


def claim_due(worker: str, lease: dt.timedelta, limit: int = 20,
              now: Optional[dt.datetime] = None) -> List[Reminder]:
    """Claims up to `limit` due reminders for `worker` until the lease ends.

    A reminder whose previous lease expired (its worker died) is due again. On PostgreSQL the
    rows are locked with SKIP LOCKED, so workers side by side neither wait for nor take each
    other's reminders; SQLite, which has no row locks, gets a conditional UPDATE per reminder.
    """
    now = now or utcnow()
    values = dict(status=CLAIMED, lease_owner=worker, lease_until=now + lease, attempts=Reminder.attempts + 1)
    if engine().dialect.name == "postgresql":
        with session() as db, db.begin():
            ids = db.execute(
                sa.select(Reminder.id).where(_due(now)).order_by(Reminder.send_at).limit(limit)
                .with_for_update(skip_locked=True)
            ).scalars().all()
            if not ids:
                return []
            db.execute(sa.update(Reminder).where(Reminder.id.in_(ids)).values(**values)
                       .execution_options(synchronize_session=False))
            return list(db.execute(sa.select(Reminder).where(Reminder.id.in_(ids))
                                   .order_by(Reminder.send_at)).scalars())
    with session() as db:
        candidates = db.execute(
            sa.select(Reminder.id).where(_due(now)).order_by(Reminder.send_at).limit(limit)
        ).scalars().all()
    claimed = []
    for reminder_id in candidates:
        with session() as db, db.begin():
            result = db.execute(sa.update(Reminder).where(Reminder.id == reminder_id, _due(now)).values(**values))
            if result.rowcount == 1:
                claimed.append(db.get(Reminder, reminder_id))
    return claimed


def mark_sent(reminder_id: int) -> bool:
    """Marks a reminder sent (the worker, once Rasa delivered it); True only the first time."""
    with session() as db, db.begin():
        result = db.execute(
            sa.update(Reminder).where(Reminder.id == reminder_id, Reminder.status.in_([PENDING, CLAIMED]))
            .values(status=SENT, sent_at=utcnow(), lease_owner=None, lease_until=None)
        )
        return result.rowcount == 1


def to_render(reminder_id: int, sender_id: str) -> Optional[Reminder]:
    """The reminder the worker asks `sender_id`'s conversation to render, if it is still to send."""
    reminder = get(reminder_id)
    if reminder is None or reminder.sender_id != sender_id or reminder.status not in (PENDING, CLAIMED):
        return None
    return reminder


def rendered_in(events: Sequence[Mapping[str, Any]], reminder_id: int) -> bool:
    """Whether a conversation's events (Rasa's JSON form) hold the message of this reminder.

    That is a bot message from `action_send_reminder` after the `EXTERNAL_reminder` that
    carried this reminder's id.
    """
    armed, action = False, None
    for event in events:
        kind = event.get("event")
        if kind == "user":
            data = event.get("parse_data") or {}
            armed = (data.get("intent") or {}).get("name") == REMINDER_INTENT and any(
                e.get("entity") == "reminder_id" and str(e.get("value")) == str(reminder_id)
                for e in data.get("entities") or [])
            action = None
        elif kind == "action":
            action = event.get("name")
        elif kind == "bot" and armed and action == REMINDER_ACTION:
            return True
    return False


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


def follow_imported_loans(replaced: Mapping[str, Set[Tuple[str, dt.date]]]) -> int:
    """Moves the reminders still ahead that were set from an imported loan onto its new due dates.

    `replaced` holds, per contact, the (programme, due date) of the instalments an import just
    replaced. A user whose reminders still ahead include one of those dates asked for reminders
    of that loan: they are scheduled again from the loan as now imported, on the same
    conversation. Reminders set from a calculation, and other users', are left alone.
    Returns how many users' reminders moved."""
    from bot import loan_book
    from bot import programme as programmes
    from bot.forget import identities

    known = programmes.load_all()
    moved = 0
    for contact, old_dues in replaced.items():
        if not old_dues:
            continue
        still_ahead = sa.select(Reminder).where(Reminder.sender_id.in_(identities(contact)),
                                                Reminder.status.in_([PENDING, FAILED]))
        with session() as db:
            ahead = db.execute(still_ahead).scalars().all()
        conversations = {(r.sender_id, r.channel) for r in ahead if (r.programme, r.due_date) in old_dues}
        for sender_id, channel in sorted(conversations):
            schedule_payments(sender_id, channel, [(known[i.programme], i.due_date, i.amount)
                                                   for i in loan_book.instalments_for(sender_id, channel)
                                                   if i.programme in known])
            moved += 1
    return moved


def main(argv: Optional[list] = None) -> int:
    """Command-line entry point: `import-loan --file loans.csv` (exit 2 on a bad file)."""
    from bot import loan_book

    parser = argparse.ArgumentParser(prog="python -m bot.reminders", description="Repayment reminders.")
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("import-loan", help="import the due dates of users' actual loans (CSV)",
                               description=loan_book.CSV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    load.add_argument("--file", required=True, help="CSV file: contact,programme,due_date,amount[,currency]")
    args = parser.parse_args(argv)
    try:
        summary = loan_book.import_file(args.file)
    except loan_book.LoanFileError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        print(f"nothing imported: {len(error.problems)} problem(s) in {args.file}", file=sys.stderr)
        return 2
    print(f"imported {summary.instalments} instalment(s) of {summary.loans} loan(s) from {args.file}")
    moved = follow_imported_loans(summary.replaced)
    if moved:
        print(f"moved the reminders of {moved} user(s) to the new due dates")
    return 0


if __name__ == "__main__":
    sys.exit(main())

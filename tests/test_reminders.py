"""Reminders: when they are scheduled, and that each is claimed and sent once."""
import datetime as dt
import os
import threading
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bot import reminders, storage
from bot.programme import load_all

UTC = dt.timezone.utc


@pytest.fixture
def tunisia():
    return load_all()["sample-tn"]


def at(text):
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "now, due, expected",
    [
        # 3 days before at 10:00 Tunis time (UTC+1)
        ("2026-11-21T09:00:00", "2026-12-01", "2026-11-28T09:00:00"),
        # due tomorrow: as soon as possible, now
        ("2026-11-21T09:00:00", "2026-11-22", "2026-11-21T09:00:00"),
        # due tomorrow but it is 23:30 in Tunis: after the quiet hours, 08:00 local
        ("2026-11-21T22:30:00", "2026-11-22", "2026-11-22T07:00:00"),
        # due date passed: no reminder
        ("2026-11-21T09:00:00", "2026-11-20", None),
    ],
)
def test_send_time_in_the_programme_time_zone_outside_quiet_hours(tunisia, now, due, expected):
    sent = reminders.send_time(dt.date.fromisoformat(due), tunisia, at(now))
    assert sent == (at(expected) if expected else None)
    if sent:
        assert sent.tzinfo is not None


@pytest.mark.parametrize("local, quiet", [("21:00", True), ("23:59", True), ("07:59", True), ("08:00", False), ("12:00", False)])
def test_quiet_hours_cross_midnight(local, quiet):
    moment = dt.datetime.fromisoformat(f"2026-11-21T{local}:00+01:00")
    assert reminders.in_quiet_hours(moment, "21:00-08:00") is quiet


def _schedule(tunisia, sender, n=3):
    today = dt.date(2026, 12, 1)
    payments = [(today + dt.timedelta(days=30 * i), Decimal("120.500")) for i in range(n)]
    return reminders.schedule(sender, "sms", tunisia, payments, now=at("2026-11-21T09:00:00"))


def test_scheduling_replaces_earlier_reminders_and_stop_cancels_them(database_url, tunisia):
    sender = f"+216{uuid.uuid4().int % 10**8:08d}"
    _schedule(tunisia, sender)
    _schedule(tunisia, sender)
    assert len(reminders.pending_for(sender)) == 3
    assert reminders.cancel_all(sender) == 3
    assert reminders.pending_for(sender) == []


def test_a_claimed_reminder_is_not_claimed_again_until_its_lease_ends(database_url, tunisia):
    sender = f"user-{uuid.uuid4().hex[:8]}"
    created = _schedule(tunisia, sender, n=1)
    later = at("2027-06-01T00:00:00")
    lease = dt.timedelta(minutes=2)
    first = [r for r in reminders.claim_due("a", lease, now=later) if r.sender_id == sender]
    assert [r.id for r in first] == [created[0].id]
    assert [r for r in reminders.claim_due("b", lease, now=later) if r.sender_id == sender] == []
    # worker "a" died: after the lease, "b" takes it
    again = [r for r in reminders.claim_due("b", lease, now=later + lease * 2) if r.sender_id == sender]
    assert [r.id for r in again] == [created[0].id]
    assert reminders.mark_sent(created[0].id) is True
    assert reminders.mark_sent(created[0].id) is False  # rendered once only


@pytest.fixture
def postgres_db(database_url):
    """A fresh, migrated PostgreSQL database (the production set-up) as the project's database."""
    from tests.test_dashboard_support import app_database_on_postgres

    with app_database_on_postgres(f"reminders_test_{os.getpid()}") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def claims_db(request, database_url):
    """The session's SQLite database, then PostgreSQL."""
    return database_url if request.param == "sqlite" else request.getfixturevalue("postgres_db")


def test_workers_racing_never_claim_the_same_reminder(claims_db, tunisia):
    sender = f"user-{uuid.uuid4().hex[:8]}"
    created = {r.id for r in _schedule(tunisia, sender, n=12)}
    later = at("2030-01-01T00:00:00")
    claims = []
    start = threading.Barrier(4)

    def work(name):
        start.wait()
        for _ in range(3):  # each worker comes back twice, as a real one would
            claims.extend((name, r.id) for r in reminders.claim_due(name, dt.timedelta(minutes=5), limit=5,
                                                                     now=later) if r.sender_id == sender)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [reminder_id for _, reminder_id in claims]
    assert sorted(ids) == sorted(created) and len(ids) == len(set(ids))
    assert {reminders.get(i).lease_owner for i in created} == {name for name, _ in claims}


def test_a_worker_skips_what_another_has_locked_instead_of_waiting_on_postgresql(postgres_db, tunisia):
    sender = f"user-{uuid.uuid4().hex[:8]}"
    created = [r.id for r in _schedule(tunisia, sender, n=3)]
    holder = storage.engine().connect()
    transaction = holder.begin()  # another worker, in the middle of claiming the first reminder
    holder.execute(sa.text("SELECT id FROM reminders WHERE id = :id FOR UPDATE"), {"id": created[0]})
    claimed = []
    worker = threading.Thread(target=lambda: claimed.extend(
        reminders.claim_due("b", dt.timedelta(minutes=5), now=at("2030-01-01T00:00:00"))))
    worker.start()
    worker.join(timeout=5)
    waited = worker.is_alive()
    transaction.rollback()
    holder.close()
    worker.join()
    assert not waited, "the claim waited for another worker's row lock"
    assert sorted(r.id for r in claimed if r.sender_id == sender) == created[1:]


def test_a_failed_send_is_retried_then_given_up(database_url, tunisia):
    sender = f"user-{uuid.uuid4().hex[:8]}"
    reminder = _schedule(tunisia, sender, n=1)[0]
    for attempt in range(reminders.MAX_ATTEMPTS):
        claimed = [r for r in reminders.claim_due("w", dt.timedelta(minutes=1), now=at("2030-01-01T00:00:00"))
                   if r.id == reminder.id]
        assert claimed, f"attempt {attempt + 1} should claim it"
        reminders.release(reminder.id, "w", "network down", dt.timedelta(seconds=0))
    assert reminders.get(reminder.id).status == reminders.FAILED


@pytest.mark.parametrize("sender, zone", [
    ("+21620123456", "Africa/Tunis"),
    ("+971501234567", "Asia/Dubai"),           # still on the number from abroad
    ("whatsapp:+12125551234", "America/New_York"),
    ("+79161234567", "Africa/Tunis"),           # Russia has eleven zones: the programme's
    ("5551234001", "Africa/Tunis"),             # a Telegram id says nothing
    ("+2160", "Africa/Tunis"),                  # not a number
])
def test_the_users_time_zone_comes_from_their_phone_number_when_it_has_one(tunisia, sender, zone):
    assert str(reminders.zone_for(sender, tunisia)) == zone


@pytest.mark.parametrize("sender, now, due, expected", [
    # 3 days before at 10:00 in Dubai (UTC+4), not in Tunis (UTC+1)
    ("+971501234567", "2026-11-21T09:00:00", "2026-12-01", "2026-11-28T06:00:00"),
    ("+21620123456", "2026-11-21T09:00:00", "2026-12-01", "2026-11-28T09:00:00"),
    # due tomorrow: now would be 04:00 in New York, in the quiet hours there: 08:00 New York time
    ("+12125551234", "2026-11-21T09:00:00", "2026-11-22", "2026-11-21T13:00:00"),
])
def test_reminders_are_scheduled_in_the_users_own_time_zone(database_url, tunisia, sender, now, due, expected):
    [reminder] = reminders.schedule(sender, "sms", tunisia, [(dt.date.fromisoformat(due), Decimal("50"))],
                                    now=at(now))
    assert reminders.get(reminder.id).send_at == at(expected)
    reminders.cancel_all(sender)

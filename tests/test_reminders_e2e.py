"""Reminders through the real Rasa server: a killed worker loses none and sends none twice."""
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from decimal import Decimal

import sqlalchemy as sa

from bot import reminders, storage
from bot.i18n import Renderer
from bot.programme import load_all
from tests.conftest import ROOT

COUNT = 6


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def worker(server, lease, pause, once=False):
    command = [sys.executable, "-m", "bot.reminder_worker", "--rasa-url", server.url, "--token", server.token,
               "--lease", str(lease), "--pause", str(pause), "--poll", "0.5"] + (["--once"] if once else [])
    return subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def statuses(ids):
    with storage.session() as db:
        rows = db.execute(sa.select(reminders.Reminder.id, reminders.Reminder.status)
                          .where(reminders.Reminder.id.in_(ids))).all()
    return {i: s for i, s in rows}


def test_reminders_survive_a_killed_worker_without_duplicates(rasa_server):
    sender = f"web-{uuid.uuid4().hex[:12]}"
    post(f"{rasa_server.url}/webhooks/webchat/webhook", {"sender": sender, "message": "مرحبا", "language": "ar"})
    tunisia = load_all()["sample-tn"]
    past = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    payments = [(dt.date(2026, 1, 10) + dt.timedelta(days=30 * i), Decimal("150.250")) for i in range(COUNT)]
    ids = [r.id for r in reminders.schedule(sender, "webchat", tunisia, payments, now=past)]
    with storage.session() as db, db.begin():
        db.execute(sa.update(reminders.Reminder).where(reminders.Reminder.id.in_(ids))
                   .values(send_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)))

    first = worker(rasa_server, lease=4, pause=1.5)
    deadline = time.monotonic() + 120
    while list(statuses(ids).values()).count(reminders.SENT) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    sent_before = list(statuses(ids).values()).count(reminders.SENT)
    assert 2 <= sent_before < COUNT, "the worker should be killed in the middle of its run"

    second = worker(rasa_server, lease=30, pause=0)
    try:
        while set(statuses(ids).values()) != {reminders.SENT} and time.monotonic() < deadline + 60:
            time.sleep(0.5)
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert set(statuses(ids).values()) == {reminders.SENT}

    url = f"{rasa_server.url}/conversations/{sender}/tracker?token={rasa_server.token}"
    with urllib.request.urlopen(url, timeout=30) as response:
        events = json.loads(response.read())["events"]
    renderer = Renderer("ar", "TN", "TND")
    expected = [renderer.render("utter_reminder_due", {"amount": "150.250", "due": due.isoformat()})
                for due, _ in payments]
    sent = [e["text"] for e in events if e["event"] == "bot" and e.get("text") in expected]
    assert sorted(sent) == sorted(expected)  # each reminder exactly once, in Arabic


def test_a_reminder_is_sent_once_though_rasa_was_down_and_an_answer_was_lost(rasa_server):
    from bot.reminder_worker import Worker
    from tests.test_reminders_worker import dead_url

    sender = f"web-{uuid.uuid4().hex[:12]}"
    post(f"{rasa_server.url}/webhooks/webchat/webhook", {"sender": sender, "message": "bonjour", "language": "fr"})
    payments = [(dt.date(2026, 3, 10), Decimal("150.250"))]
    [reminder] = reminders.schedule(sender, "webchat", load_all()["sample-tn"], payments,
                                    now=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))

    def make_due():
        with storage.session() as db, db.begin():
            db.execute(sa.update(reminders.Reminder).where(reminders.Reminder.id == reminder.id)
                       .values(send_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))

    make_due()
    lease = dt.timedelta(seconds=60)
    Worker(dead_url(), rasa_server.token, lease).run_once()  # Rasa is down
    assert (reminders.get(reminder.id).status, reminders.get(reminder.id).attempts) == (reminders.PENDING, 1)

    make_due()  # its retry time has come
    up = Worker(rasa_server.url, rasa_server.token, lease)
    [claimed] = [r for r in reminders.claim_due(up.name, lease, limit=500) if r.id == reminder.id]
    up.trigger(claimed)  # Rasa sent it, then the worker died before it read the answer
    assert reminders.get(reminder.id).status == reminders.CLAIMED  # rendering alone does not mark it sent

    with storage.session() as db, db.begin():  # the dead worker's lease ends
        db.execute(sa.update(reminders.Reminder).where(reminders.Reminder.id == reminder.id)
                   .values(lease_until=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    again = Worker(rasa_server.url, rasa_server.token, lease)
    [retried] = [r for r in reminders.claim_due(again.name, lease, limit=500) if r.id == reminder.id]
    assert again.deliver(retried) is True
    assert reminders.get(reminder.id).status == reminders.SENT

    url = f"{rasa_server.url}/conversations/{sender}/tracker?token={rasa_server.token}"
    with urllib.request.urlopen(url, timeout=30) as response:
        events = json.loads(response.read())["events"]
    expected = Renderer("fr", "TN", "TND").render("utter_reminder_due", {"amount": "150.250", "due": "2026-03-10"})
    assert [e["text"] for e in events if e["event"] == "bot" and e.get("text") == expected] == [expected]

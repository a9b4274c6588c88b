"""The reminder worker against a stand-in of Rasa's HTTP API: a reminder is marked sent only once
Rasa answered with it in the conversation; unreachable Rasa, an error status, a crashed worker or an
answer without the reminder leave it due, to be sent again later, once."""
import datetime as dt
import socket
import uuid
from decimal import Decimal
from typing import Any, Dict, List, Tuple

import pytest

from bot import reminders
from bot.programme import load_all
from bot.reminder_worker import Worker
from tests.standins import Failure, Recorded, StandIn

UTC = dt.timezone.utc
LEASE = dt.timedelta(minutes=2)
LATER = dt.datetime(2030, 1, 1, tzinfo=UTC)  # every test reminder is due by then


class RasaStandIn(StandIn):
    """Answers `POST /conversations/<id>/trigger_intent` like Rasa: the conversation after the
    intent, with the reminder's message unless told to render nothing (an action server down)."""

    def __init__(self) -> None:
        super().__init__()
        self.render = True

    def succeed(self, recorded: Recorded) -> Tuple[int, Any]:
        """The conversation: the external intent, the action, and the bot's message."""
        entities = [{"entity": k, "value": v} for k, v in (recorded.params.get("entities") or {}).items()]
        events: List[Dict[str, Any]] = [
            {"event": "user", "text": f"EXTERNAL: {recorded.params.get('name')}",
             "parse_data": {"intent": {"name": recorded.params.get("name")}, "entities": entities}},
            {"event": "action", "name": "action_send_reminder"},
        ]
        if self.render:
            events.append({"event": "bot", "text": "Reminder: your payment is due"})
        events.append({"event": "action", "name": "action_listen"})
        return 200, {"tracker": {"sender_id": recorded.path.split("/")[2], "events": events}}

    def triggers(self, reminder_id: int) -> List[Recorded]:
        """The trigger_intent calls made for one reminder."""
        return [r for r in self.sent("trigger_intent")
                if (r.params.get("entities") or {}).get("reminder_id") == str(reminder_id)]


@pytest.fixture(scope="module")
def rasa():
    server = RasaStandIn()
    yield server
    server.close()


@pytest.fixture
def one_reminder(database_url, rasa):
    """A due reminder of a new user, and a clean stand-in."""
    rasa.clear()
    rasa.render = True
    sender = f"user-{uuid.uuid4().hex[:10]}"
    [reminder] = reminders.schedule(sender, "webchat", load_all()["sample-tn"],
                                    [(dt.date(2026, 12, 1), Decimal("120.500"))],
                                    now=dt.datetime(2026, 11, 1, tzinfo=UTC))
    return reminder


def dead_url() -> str:
    """A URL where nothing listens (Rasa is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def worker(url: str) -> Worker:
    return Worker(url, "test-token", LEASE, batch=200, timeout=5)


def mine(reminder_id: int, worker_: Worker, now: dt.datetime) -> bool:
    """Runs one round of `worker_` at `now`; True if it handled `reminder_id` (others are ignored)."""
    before = reminders.get(reminder_id)
    worker_.run_once(now=now)
    after = reminders.get(reminder_id)
    return (after.attempts, after.status) != (before.attempts, before.status)


def test_a_delivered_reminder_is_marked_sent_once(one_reminder, rasa):
    assert mine(one_reminder.id, worker(rasa.url), LATER)
    assert reminders.get(one_reminder.id).status == reminders.SENT
    worker(rasa.url).run_once(now=LATER + dt.timedelta(days=1))
    assert len(rasa.triggers(one_reminder.id)) == 1
    request = rasa.triggers(one_reminder.id)[0]
    assert request.path == f"/conversations/{one_reminder.sender_id}/trigger_intent"
    assert request.params["name"] == "EXTERNAL_reminder"


@pytest.mark.parametrize("failure", ["unreachable", "500"])
def test_a_failed_trigger_leaves_the_reminder_due_and_it_is_retried_later(one_reminder, rasa, failure):
    url = dead_url() if failure == "unreachable" else rasa.url
    if failure == "500":
        rasa.failures.append(Failure("trigger_intent", 500, {"status": "failure", "reason": "ConversationError"}))
    mine(one_reminder.id, worker(url), LATER)
    kept = reminders.get(one_reminder.id)
    assert (kept.status, kept.attempts, kept.sent_at) == (reminders.PENDING, 1, None)
    assert kept.last_error.startswith(("URLError", "HTTPError"))
    assert kept.send_at > dt.datetime.now(UTC)  # retried after a delay, not in a tight loop
    # not due again before its retry time, then sent once
    assert not mine(one_reminder.id, worker(rasa.url), kept.send_at - dt.timedelta(seconds=1))
    assert mine(one_reminder.id, worker(rasa.url), kept.send_at + dt.timedelta(seconds=1))
    assert reminders.get(one_reminder.id).status == reminders.SENT
    assert len(rasa.triggers(one_reminder.id)) == (1 if failure == "unreachable" else 2)


def test_an_answer_without_the_reminder_does_not_count_as_sent(one_reminder, rasa):
    rasa.render = False  # e.g. the action server was down: Rasa answers 200 and says nothing
    mine(one_reminder.id, worker(rasa.url), LATER)
    kept = reminders.get(one_reminder.id)
    assert (kept.status, kept.last_error) == (reminders.PENDING, "RuntimeError: Rasa answered without rendering "
                                                                 "the reminder")
    rasa.render = True
    assert mine(one_reminder.id, worker(rasa.url), kept.send_at + dt.timedelta(seconds=1))
    assert reminders.get(one_reminder.id).status == reminders.SENT


def test_a_worker_that_died_after_claiming_leaves_the_reminder_to_another_after_the_lease(one_reminder, rasa):
    claimed = [r.id for r in reminders.claim_due("dead-worker", LEASE, limit=500, now=LATER)]
    assert one_reminder.id in claimed  # ... and the worker died before calling Rasa
    assert not mine(one_reminder.id, worker(rasa.url), LATER + LEASE / 2)  # still its lease
    assert mine(one_reminder.id, worker(rasa.url), LATER + LEASE * 2)
    sent = reminders.get(one_reminder.id)
    assert (sent.status, sent.attempts) == (reminders.SENT, 2)
    assert len(rasa.triggers(one_reminder.id)) == 1


def test_the_conversation_already_holding_the_reminder_counts_as_sent(one_reminder):
    user = {"event": "user", "parse_data": {"intent": {"name": "EXTERNAL_reminder"},
                                            "entities": [{"entity": "reminder_id", "value": str(one_reminder.id)}]}}
    other = {"event": "user", "parse_data": {"intent": {"name": "EXTERNAL_reminder"},
                                             "entities": [{"entity": "reminder_id", "value": "999999"}]}}
    action, bot = {"event": "action", "name": "action_send_reminder"}, {"event": "bot", "text": "..."}
    assert reminders.rendered_in([user, action, bot], one_reminder.id)
    assert not reminders.rendered_in([user, action], one_reminder.id)
    assert not reminders.rendered_in([other, action, bot], one_reminder.id)
    assert not reminders.rendered_in([user, {"event": "action", "name": "loan_form"}, bot], one_reminder.id)
    assert not reminders.rendered_in([user, action, {"event": "user", "parse_data": {}}, bot], one_reminder.id)

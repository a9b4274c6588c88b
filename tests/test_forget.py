"""`forget_me` erases one user from every table, on SQLite and on the real PostgreSQL.

Three users (a phone number that wrote by SMS and by WhatsApp, a Telegram user, another phone
number) fill every table through the project's own code; one of them is forgotten; then every
column of every table is read back and must hold nothing of theirs: sender id, phone digits,
message texts, pseudonyms. The others stay whole, and the anonymous counts do not change.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Dict, List, Set, Tuple

import pytest
import sqlalchemy as sa

from bot import forget as forgetting
from bot import loan_book, profiles, reminders, storage, unanswered
from bot.dashboard import etl, privacy
from bot.dashboard import models as m
from bot.handoff import advisors, tickets
from bot.programme import load_all
from tests.test_dashboard_support import drop_postgres_database, postgres_database

GROUP = "-1009988776655"  # the advisors' Telegram group


@dataclass
class Person:
    """A user of the test: their sender ids (with channels), and what identifies them."""

    key: str
    senders: List[Tuple[str, str]]
    token: str  # in every text they wrote
    arabic: str  # a name they wrote in Arabic script
    digits: str  # their phone number or Telegram id, as digits
    ticket_ids: List[int] = field(default_factory=list)

    def texts(self, sender: str) -> List[str]:
        return [f"Hello, I am {self.token} and I came back last month",
                f"{self.token}: my loan number is 88-{self.token} at the old bank",
                f"اسمي {self.arabic} وأريد قرضا"]

    def question(self, sender: str) -> str:
        return f"{self.token} asks: can my cousin in {sender[-4:]} sign for me?"

    def needles(self, secret: bytes) -> Set[str]:
        """Strings that must not survive them: stored as is, or escaped inside JSON."""
        plain = {self.token, self.arabic, self.digits}
        for sender, _ in self.senders:
            plain.add(privacy.sender_hash(secret, sender))
            plain.add(etl.similar_key(self.question(sender), "fr"))
        return plain | {json.dumps(text)[1:-1] for text in plain}


PEOPLE = {
    "phone": Person("phone", [("+21650418273", "sms"), ("whatsapp:+21650418273", "whatsapp")],
                    "AMINA7731", "أمينة", "21650418273"),
    "telegram": Person("telegram", [("6023417785", "telegram")], "TARIQ4402", "طارق", "6023417785"),
    "other": Person("other", [("+21698765012", "sms")], "BILAL9150", "بلال", "21698765012"),
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path, monkeypatch):
    """A migrated throwaway database that the code under test uses (`DATABASE_URL`), and the
    settings of a Rasa tracker store on that same database."""
    if request.param == "sqlite":
        path = tmp_path / "forget.db"
        url, tracker = f"sqlite:///{path}", {"dialect": "sqlite", "db": str(path)}
    else:
        name = f"forget_test_{os.getpid()}"
        url = postgres_database(name)
        if url is None:
            pytest.fail("the PostgreSQL server at 127.0.0.1:5432 is needed and did not answer")
        parts = sa.engine.make_url(url)
        tracker = {"dialect": "postgresql", "host": parts.host, "port": parts.port, "db": name,
                   "username": parts.username}
    monkeypatch.setenv("DATABASE_URL", url)
    storage.engine.cache_clear()
    storage.upgrade(url)
    yield url, tracker
    storage.engine().dispose()
    storage.engine.cache_clear()
    if request.param == "postgresql":
        drop_postgres_database(name)


async def save_conversation(store, person: Person, sender: str, channel: str, ticket_id: int) -> None:
    """The conversation as Rasa stores it: the user's messages, slots, an advisor's answer."""
    from rasa.shared.core.events import (ActionExecuted, BotUttered, SessionStarted, SlotSet,
                                         UserUttered)
    from rasa.shared.core.trackers import DialogueStateTracker

    def said(text: str, intent: str) -> UserUttered:
        return UserUttered(text, {"name": intent, "confidence": 0.9},
                           parse_data={"text": text.lower(), "original_text": text,
                                       "intent": {"name": intent, "confidence": 0.9}, "entities": []},
                           input_channel=channel)

    events = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")]
    for text in person.texts(sender):
        events += [said(text, "greet"), SlotSet("language", "fr"), SlotSet("country", "TN"),
                   BotUttered("Bonjour !"), ActionExecuted("action_listen")]
    events += [said(person.question(sender), "nlu_fallback"), ActionExecuted("action_listen"),
               BotUttered(f"Nadia: {person.token}, your file 88-{person.token} is ready",
                          metadata={"ticket": ticket_id, "advisor": "Nadia"})]
    await store.save(DialogueStateTracker.from_events(sender, events))


async def fill(person: Person, store, advisor) -> None:
    """Everything the assistant keeps about one person, written by the project's own code."""
    from channels.delivery import process_once, record_status, save_pages

    programme = load_all()["sample-tn"]
    today = dt.datetime.now(programme.timezone).date()
    for number, (sender, channel) in enumerate(person.senders):
        profiles.remember(sender, channel, language="fr", country="TN")
        made = reminders.schedule(sender, channel, programme,
                                  [(today + dt.timedelta(days=30 * k), Decimal("250.50")) for k in (1, 2, 3)])
        assert reminders.mark_sent(made[0].id)
        done = tickets.open_ticket(sender, "user_request", channel, "fr", "TN", programme.id)
        assert tickets.claim(done.id, advisor.id, advisor.name)
        tickets.record_reply(done.id, advisor.id)
        tickets.remember_post(done.id, GROUP, f"{done.id}01", f"{done.id}99")
        assert tickets.close(done.id, advisor.id, "resolved")
        waiting = tickets.open_ticket(sender, "sensitive", channel, "fr", "TN", programme.id)
        tickets.remember_post(waiting.id, GROUP, f"{waiting.id}01")
        person.ticket_ids += [done.id, waiting.id]
        await save_conversation(store, person, sender, channel, done.id)
        unanswered.record(person.question(sender), "fr", "fallback", programme.id)
        provider_id = f"{sender}:4{number}" if channel == "telegram" else f"SM{person.token}{number}"
        async def handled() -> str:
            return "message"

        assert await process_once(channel, f"in-{person.token}-{number}", sender, handled) == ("message", 200)
        await record_status(channel, provider_id, sender, "delivered")
        await record_status(channel, None, sender, "failed", 21211,
                            f"The 'To' number {sender} is not a valid phone number.")
        await save_pages(sender, [f"page 2 for {person.token}", f"page 3 for {person.token}"])


def import_loans(people: List[Person], folder) -> None:
    """Each person's actual loan, imported by staff from a CSV file."""
    from bot.loan_book import import_file

    path = folder / "loans.csv"
    rows = ["contact,programme,due_date,amount,currency"] + [
        f"{person.senders[0][0]},sample-tn,2031-0{month}-15,350.000,TND"
        for person in people for month in (1, 2)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert import_file(str(path)).instalments == 2 * len(people)


def scan(engine: sa.engine.Engine, needles: Set[str]) -> Dict[str, Set[str]]:
    """For each needle, the tables where some column of some row contains it."""
    found: Dict[str, Set[str]] = {}
    with engine.connect() as db:
        for name in sa.inspect(db).get_table_names():
            table = sa.Table(name, sa.MetaData(), autoload_with=db)
            for row in db.execute(sa.select(table)):
                for value in row:
                    if value is None:
                        continue
                    text = value.hex() if isinstance(value, (bytes, memoryview)) else str(value)
                    for needle in needles:
                        if needle in text:
                            found.setdefault(needle, set()).add(name)
    return found


def tables_of(found: Dict[str, Set[str]]) -> Set[str]:
    return set().union(*found.values()) if found else set()


def counts(engine: sa.engine.Engine) -> Dict[str, int]:
    """The anonymous figures staff rely on."""
    with engine.connect() as db:
        one = lambda query: int(db.execute(query).scalar() or 0)  # noqa: E731
        return {
            "tickets": one(sa.select(sa.func.count()).select_from(tickets.Ticket.__table__)),
            "reminders": one(sa.select(sa.func.count()).select_from(reminders.Reminder.__table__)),
            "questions": one(sa.select(sa.func.count()).select_from(storage.UnansweredQuestion.__table__)),
            "dash_questions": one(sa.select(sa.func.count()).select_from(m.dash_unanswered)),
            "messages": one(sa.select(sa.func.sum(m.dash_user_days.c.messages))),
            "labelled": one(sa.select(sa.func.sum(m.dash_label_days.c.messages))),
            "calculation_steps": one(sa.select(sa.func.count()).select_from(m.dash_steps)),
        }


# Every table the fill reaches with something that identifies the person.
EXPECTED_TABLES = {"events", "profiles", "reminders", "tickets", "channel_deliveries", "delivery_statuses",
                   "sms_continuations", "unanswered_questions", "dash_senders", "dash_unanswered",
                   "loan_instalments"}


@pytest.mark.parametrize("forgotten", ["phone", "telegram"])
async def test_forget_leaves_nothing_of_the_user_in_any_table(database, forgotten, tmp_path):
    from bot.tracker_store import PrivacySQLTrackerStore

    url, tracker_settings = database
    store = PrivacySQLTrackerStore(**tracker_settings)
    engine = storage.engine()
    advisor = advisors.add("Nadia", "telegram", "5550001", programme="sample-tn")
    people = {key: Person(p.key, list(p.senders), p.token, p.arabic, p.digits) for key, p in PEOPLE.items()}
    for person in people.values():
        await fill(person, store, advisor)
    import_loans(list(people.values()), tmp_path)
    etl.refresh(engine, lag=0)
    secret = privacy.key(engine)
    target = people[forgotten]
    kept = [person for key, person in people.items() if key != forgotten]
    assert tables_of(scan(engine, target.needles(secret))) == EXPECTED_TABLES
    before = {person.key: scan(engine, person.needles(secret)) for person in kept}
    figures = counts(engine)
    assert figures["messages"] > 0 and figures["dash_questions"] == figures["questions"] == 4

    done = forgetting.forget(target.senders[0][0])

    left = scan(engine, target.needles(secret))
    assert left == {}, f"still there after forget: {left}"
    assert counts(engine) == figures
    for person in kept:
        assert scan(engine, person.needles(secret)) == before[person.key], person.key
    with engine.connect() as db:
        t, p = tickets.Ticket.__table__, tickets.TicketPost.__table__
        rows = db.execute(sa.select(t.c.sender_id, t.c.status, t.c.reason, t.c.created_at)
                          .where(t.c.id.in_(target.ticket_ids))).all()
        assert len(rows) == len(target.ticket_ids)
        assert {row.sender_id for row in rows} == {""} and {row.status for row in rows} == {tickets.CLOSED}
        assert all(row.reason and row.created_at for row in rows)
        assert db.execute(sa.select(sa.func.count()).select_from(p)
                          .where(p.c.ticket_id.in_(target.ticket_ids))).scalar() == 0
        for person in kept:
            assert db.execute(sa.select(sa.func.count()).select_from(p)
                              .where(p.c.ticket_id.in_(person.ticket_ids))).scalar() == len(person.ticket_ids)
        r = reminders.Reminder.__table__
        assert db.execute(sa.select(sa.func.count()).select_from(r)
                          .where(r.c.sender_id == "", r.c.status == reminders.PENDING)).scalar() == 0
    for person in kept:
        for sender, _ in person.senders:
            assert profiles.get(sender) is not None
            assert len(reminders.pending_for(sender)) == 2
            assert tickets.active_for(sender) is not None
    for person in kept:
        assert len(loan_book.instalments_for(person.senders[0][0])) == 2
    assert done["tickets"] == len(target.ticket_ids) and done["dash_senders"] == len(target.senders)
    again = forgetting.forget(target.senders[-1][0])
    assert not any(again.values()), again
    store.engine.dispose()


def test_a_phone_number_is_one_person_on_sms_and_whatsapp():
    assert forgetting.identities("+21650418273") == ["+21650418273", "whatsapp:+21650418273"]
    assert forgetting.identities("whatsapp:+93701234567") == ["+93701234567", "whatsapp:+93701234567"]
    assert forgetting.identities("6023417785") == ["6023417785"]  # a Telegram id is not a phone number
    assert forgetting.identities("web-chat_1234") == ["web-chat_1234"]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_the_action_forgets_with_the_conversation_it_is_given_and_confirms_in_arabic(database):
    """The tracker store may be another database: the action's own events find the user's texts."""
    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    from actions.privacy import ActionForgetMe

    sender, text, other = "+21650418273", "AMINA7731 أين المكتب؟", "BILAL9150 أين المكتب؟"
    profiles.remember(sender, "sms", language="ar")
    unanswered.record(text, "ar", "fallback", "sample-tn")
    unanswered.record(other, "ar", "fallback", "sample-tn")
    events = [{"event": "user", "text": text, "timestamp": time.time(),
               "parse_data": {"text": text, "intent": {"name": "nlu_fallback"}}},
              {"event": "user", "text": "/affirm", "timestamp": time.time()}]
    tracker = Tracker(sender, {"language": "ar"}, events[-1], events, False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()

    assert ActionForgetMe().run(dispatcher, tracker, {}) == []

    assert [(message["response"], message["language"]) for message in dispatcher.messages] == \
        [("utter_forget_done", "ar")]
    assert profiles.get(sender) is None
    with storage.engine().connect() as db:
        q = storage.UnansweredQuestion.__table__
        assert sorted(db.execute(sa.select(q.c.text)).scalars()) == ["", other]

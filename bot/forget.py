"""Erasing one user everywhere (`forget_me`): the one place that knows where a user is stored.

`forget(sender_id)` runs in one transaction on the project's database (`DATABASE_URL`):

- deleted: Rasa's tracker events (when the tracker store shares the database), the profile,
  inbound delivery records (`channel_deliveries`), delivery statuses (phone number or chat id,
  provider message id, error text), SMS continuation pages, imported loan instalments (staff
  import them again from their own records if the person comes back), and every row of any
  other table whose `sender_id` or `recipient_id` names the user;
- kept as anonymous counts: tickets (empty sender id, closed if still active; what the desk
  posted about them in the advisors' Telegram groups is queued, and the desk deletes it there),
  reminders (empty sender id, the ones still ahead cancelled), the dashboard's aggregates (the
  keyed-hash row that linked them to the user is deleted), and unanswered questions the user
  wrote (their text emptied, as the retention job does).

A phone number is one person on SMS (`+216...`) and on WhatsApp (`whatsapp:+216...`): both are
erased. A Telegram sender id is the private chat id, which is the user's id.
The conversation being held in memory by Rasa is deleted at the end of the same turn by
`bot.tracker_store.PrivacySQLTrackerStore`.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.storage import engine as default_engine

WHATSAPP_PREFIX = "whatsapp:"
PHONE = re.compile(r"^\+\d{6,15}$")
USER_COLUMNS = ("sender_id", "recipient_id")  # in any table, they name a user
TABLE_USER_COLUMNS = {"loan_instalments": ("contact",)}  # `contact` elsewhere is an advisor's
ANONYMOUS = ""  # the sender id of a row kept only to be counted
QUESTION_WINDOW = (dt.timedelta(minutes=1), dt.timedelta(hours=1))  # question stored this near its message
MAX_QUESTION_LENGTH = 1000  # as `bot.unanswered` stores it


def identities(sender_id: str) -> List[str]:
    """Every sender id under which the same person is stored: a phone number on SMS and on
    WhatsApp, else the id itself (a Telegram chat id, a web chat id)."""
    number = sender_id[len(WHATSAPP_PREFIX):] if sender_id.startswith(WHATSAPP_PREFIX) else sender_id
    if PHONE.match(number):
        return [number, WHATSAPP_PREFIX + number]
    return [sender_id]


def _user_messages(events: Iterable[Mapping[str, Any]]) -> List[Tuple[str, Optional[float]]]:
    """(text, timestamp) of every message the user typed, as given and as parsed."""
    found = []
    for event in events:
        if not isinstance(event, Mapping) or event.get("event") != "user":
            continue
        parse = event.get("parse_data") or {}
        for text in {event.get("text"), parse.get("text"), parse.get("original_text")}:
            if isinstance(text, str) and text and not text.startswith("/"):
                found.append((text[:MAX_QUESTION_LENGTH], event.get("timestamp")))
    return found


def _stored_events(db: Connection, tables: Set[str], ids: List[str]) -> List[Dict[str, Any]]:
    if "events" not in tables:
        return []
    from bot.dashboard.models import events_table

    e = events_table().c
    rows = db.execute(sa.select(e.data).where(e.sender_id.in_(ids), e.type_name == "user")).scalars()
    events = []
    for data in rows:
        try:
            events.append(json.loads(data or "{}"))
        except ValueError:
            continue
    return events


def _blank_questions(db: Connection, messages: List[Tuple[str, Optional[float]]]) -> int:
    """Empties the text of the unanswered questions that are these messages (same text, stored
    just after it was sent); the question stays counted."""
    from bot.dashboard.etl import similar_key
    from bot.dashboard.models import dash_unanswered
    from bot.storage import UnansweredQuestion

    q = UnansweredQuestion.__table__
    sent: Dict[str, List[Optional[float]]] = {}
    for text, timestamp in messages:
        sent.setdefault(text, []).append(timestamp)
    before, after = QUESTION_WINDOW
    blanked: List[Tuple[int, Optional[str]]] = []
    texts = sorted(sent)
    for start in range(0, len(texts), 500):
        rows = db.execute(sa.select(q.c.id, q.c.text, q.c.language, q.c.created_at)
                          .where(q.c.text.in_(texts[start:start + 500]))).all()
        for row in rows:
            if any(ts is None or ts - before.total_seconds() <= row.created_at.timestamp() <= ts + after.total_seconds()
                   for ts in sent[row.text]):
                blanked.append((row.id, row.language))
    for question_id, language in blanked:
        db.execute(sa.update(q).where(q.c.id == question_id).values(text=""))
        db.execute(sa.update(dash_unanswered).where(dash_unanswered.c.question_id == question_id)
                   .values(similar_key=similar_key("", language)))
    return len(blanked)


def _unlink_reminders(db: Connection, ids: List[str]) -> int:
    from bot import reminders

    r = reminders.Reminder.__table__
    db.execute(sa.update(r).where(r.c.sender_id.in_(ids), r.c.status.in_([reminders.PENDING, reminders.CLAIMED]))
               .values(status=reminders.CANCELLED, lease_owner=None, lease_until=None))
    return db.execute(sa.update(r).where(r.c.sender_id.in_(ids))
                      .values(sender_id=ANONYMOUS, last_error=None)).rowcount


def _delete_rows(db: Connection, table: str, columns: List[str], ids: List[str]) -> int:
    t = sa.table(table, *(sa.column(name) for name in columns))
    return db.execute(sa.delete(t).where(sa.or_(*(t.c[name].in_(ids) for name in columns)))).rowcount


def forget(sender_id: str, events: Iterable[Mapping[str, Any]] = ()) -> Dict[str, int]:
    """Erases the user everywhere in one transaction; returns the rows deleted or unlinked per table.

    `events` are the conversation's events as Rasa hands them to an action (dicts), so the
    user's messages are found even when the tracker store is another database.
    """
    from bot.dashboard import privacy
    from bot.handoff import tickets

    ids = identities(sender_id)
    engine = default_engine()
    tables = set(sa.inspect(engine).get_table_names())
    dashboard = "dash_senders" in tables
    if dashboard:
        privacy.key(engine)  # may create the key: before our transaction, which SQLite would make it wait for
    done: Dict[str, int] = {}
    with engine.begin() as db:
        messages = _user_messages(list(events) + _stored_events(db, tables, ids))
        if "unanswered_questions" in tables and messages:
            done["unanswered_questions"] = _blank_questions(db, messages)
        if "tickets" in tables:
            done["tickets"] = sum(tickets.forget(one, db) for one in ids)
        if "reminders" in tables:
            done["reminders"] = _unlink_reminders(db, ids)
        if dashboard:
            done["dash_senders"] = sum(privacy.forget(engine, one, db) for one in ids)
        inspector = sa.inspect(db)
        for table in sorted(tables - {"tickets", "reminders"}):
            wanted = USER_COLUMNS + TABLE_USER_COLUMNS.get(table, ())
            columns = [c["name"] for c in inspector.get_columns(table) if c["name"] in wanted]
            if columns:
                done[table] = _delete_rows(db, table, columns, ids)
    return done

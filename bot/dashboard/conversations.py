"""Single conversations for admins: an unanswered question's context, a handoff transcript.

The sender id never leaves this module: the views get a pseudonym instead.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import List, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.dashboard import models as m
from bot.dashboard import privacy
from bot.dashboard.etl import label_of

CONTEXT_BEFORE = 30 * 60
CONTEXT_AFTER = 10 * 60
MAX_LINES = 200


@dataclass
class Line:
    """One message of a transcript."""

    at: dt.datetime
    speaker: str  # "user" or "bot"
    text: str
    label: Optional[str] = None
    channel: Optional[str] = None
    highlight: bool = False


@dataclass
class Transcript:
    """The messages of one pseudonymised user around a moment."""

    pseudonym: str
    lines: List[Line]
    language: Optional[str] = None


def _read(db: Connection, sender_id: str, begin: float, end: float, secret: bytes) -> Transcript:
    e = m.events_table().c
    rows = db.execute(sa.select(e.type_name, e.timestamp, e.intent_name, e.data)
                      .where(e.sender_id == sender_id, e.timestamp >= begin, e.timestamp <= end,
                             e.type_name.in_(["user", "bot", "slot"]))
                      .order_by(e.id).limit(MAX_LINES * 3)).all()
    lines, language = [], None
    for row in rows:
        data = json.loads(row.data or "{}")
        if row.type_name == "slot":
            if data.get("name") == "language" and isinstance(data.get("value"), str):
                language = data["value"]
            continue
        if (data.get("metadata") or {}).get("is_external"):
            continue
        at = dt.datetime.fromtimestamp(row.timestamp, dt.timezone.utc)
        if row.type_name == "user":
            lines.append(Line(at, "user", data.get("text") or "", label_of(row.intent_name, data),
                              data.get("input_channel")))
        else:
            lines.append(Line(at, "bot", data.get("text") or ""))
    return Transcript(privacy.pseudonym(secret, sender_id), lines[:MAX_LINES], language)


def question_context(db: Connection, question_id: int, secret: bytes) -> Optional[Transcript]:
    """The conversation around an unanswered question, or None if it cannot be found any more."""
    q = m.unanswered_table()
    question = db.execute(sa.select(q.c.text, q.c.created_at).where(q.c.id == question_id)).first()
    if question is None or not question.text or not sa.inspect(db).has_table("events"):
        return None
    moment = question.created_at.timestamp()
    e = m.events_table().c
    candidates = db.execute(sa.select(e.sender_id, e.timestamp, e.data)
                            .where(e.type_name == "user", e.timestamp >= moment - 600, e.timestamp <= moment + 60)
                            .order_by(e.id)).all()
    best = None
    for row in candidates:
        if json.loads(row.data or "{}").get("text") == question.text:
            if best is None or abs(row.timestamp - moment) < abs(best.timestamp - moment):
                best = row
    if best is None:
        return None
    transcript = _read(db, best.sender_id, best.timestamp - CONTEXT_BEFORE, best.timestamp + CONTEXT_AFTER, secret)
    for line in transcript.lines:
        line.highlight = line.speaker == "user" and abs(line.at.timestamp() - best.timestamp) < 0.001
    return transcript


def ticket_transcript(db: Connection, ticket_id: int, secret: bytes) -> Optional[Transcript]:
    """The conversation of a handoff ticket, from an hour before it opened until it closed."""
    from bot.dashboard.handoffs import transcript_window

    window = transcript_window(db, ticket_id)
    if window is None or not sa.inspect(db).has_table("events"):
        return None
    sender_id, begin, end = window
    return _read(db, sender_id, begin, end, secret)

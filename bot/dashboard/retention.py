"""Deletes message texts older than the retention period, keeping every count.

`RETENTION_DAYS` (or `python -m bot.dashboard retention --days N`) sets the period. The
aggregates are brought up to date first, so nothing counted is lost; then, in Rasa's `events`
table, the `text` of user events (and its copy in `parse_data`, entity values, which are pieces
of it, and the links to a photo or voice message they carried) and the `text` of bot events
(answers, calculations, advisors' messages and the buttons sent with them) are blanked, and
the text of old unanswered questions is emptied. Rows stay, so message, fallback and
unanswered counts do not change. The handoff tables keep no message text (`ticket_posts`
only links a Telegram message id to its ticket), so there is nothing there to blank.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any, Dict, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.dashboard import models as m
from bot.dashboard.etl import Refresher
from bot.storage import utcnow

BATCH = 2000


def retention_days() -> Optional[int]:
    """The configured period (`RETENTION_DAYS`), or None when texts are kept."""
    raw = os.environ.get("RETENTION_DAYS", "").strip()
    if not raw:
        return None
    days = int(raw)
    if days < 1:
        raise ValueError("RETENTION_DAYS must be a positive number of days")
    return days


def blank_user_event(data: Dict) -> bool:
    """Removes the message text from a user event's data in place; True if anything changed."""
    changed = False
    if data.get("text"):
        data["text"] = ""
        changed = True
    parse = data.get("parse_data")
    if isinstance(parse, dict):
        if parse.get("text"):
            parse["text"] = ""
            changed = True
        for entity in parse.get("entities") or []:
            if isinstance(entity, dict) and entity.get("value") not in (None, ""):
                entity["value"] = ""
                changed = True
    metadata = data.get("metadata")
    if isinstance(metadata, dict) and metadata.get("media"):
        kinds = _media_kinds(metadata["media"])
        if kinds != metadata["media"]:
            metadata["media"] = kinds
            changed = True
    return changed


def _media_kinds(media: Any) -> Any:
    """Only the kind of each photo or voice message (its link or file id goes)."""
    if isinstance(media, list):
        return [_media_kinds(item) for item in media]
    if isinstance(media, dict):
        return {"type": media.get("type")}
    return None


def blank_bot_event(data: Dict) -> bool:
    """Removes what the assistant or an advisor said from a bot event's data in place (its
    text, and the buttons, quick replies, attachments and custom payload sent with it); the
    response key in `metadata` stays. True if anything changed."""
    changed = False
    if data.get("text"):
        data["text"] = ""
        changed = True
    extra = data.get("data")
    if isinstance(extra, dict):
        for name, value in extra.items():
            if value not in (None, "", [], {}):
                extra[name] = None
                changed = True
    return changed


def blank_event(kind: str, data: Dict) -> bool:
    """Blanks the texts of a user or bot event in place; True if anything changed."""
    return blank_user_event(data) if kind == "user" else blank_bot_event(data) if kind == "bot" else False


def apply(engine: Engine, days: int, now: Optional[dt.datetime] = None) -> Dict[str, int]:
    """Blanks the texts older than `days`; returns how many events and questions were blanked."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=days)
    Refresher(engine).run(lag=0)
    blanked = {"events": 0, "questions": 0}
    if sa.inspect(engine).has_table("events"):
        blanked["events"] = _events(engine, cutoff.timestamp())
    q = m.unanswered_table()
    with engine.begin() as db:
        blanked["questions"] = db.execute(sa.update(q).where(q.c.created_at < cutoff, q.c.text != "")
                                          .values(text="")).rowcount
    return blanked


def _events(engine: Engine, cutoff: float) -> int:
    e = m.events_table().c
    count, after = 0, 0
    while True:
        with engine.begin() as db:
            rows = db.execute(sa.select(e.id, e.type_name, e.data)
                              .where(e.type_name.in_(("user", "bot")), e.timestamp < cutoff, e.id > after)
                              .order_by(e.id).limit(BATCH)).all()
            updates = []
            for row in rows:
                data = json.loads(row.data or "{}")
                if blank_event(row.type_name, data):
                    updates.append({"event_id": row.id, "new_data": json.dumps(data)})
            if updates:
                events = m.events_table()
                db.execute(sa.update(events).where(events.c.id == sa.bindparam("event_id"))
                           .values(data=sa.bindparam("new_data")), updates)
        count += len(updates)
        if len(rows) < BATCH:
            return count
        after = rows[-1].id

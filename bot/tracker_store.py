"""Rasa's SQL tracker store, able to forget a user completely, and lighter per message.

When `action_forget_me` has run in a turn, the store deletes every stored event of that
conversation instead of appending the turn, so nothing the user said remains.

Rasa builds its queries anew for every message, loads a conversation as one ORM object per
stored event and appends a turn one ORM object at a time; here the same queries are built once,
read only the `data` column and insert the turn in one statement (the rows, their order and the
session boundaries are Rasa's).
"""
from __future__ import annotations

import asyncio
import itertools
import json
from functools import cached_property
from typing import Any, Dict, Optional, Text

import sqlalchemy as sa

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

FORGET_ACTION = "action_forget_me"


def forgets(tracker: DialogueStateTracker) -> bool:
    """Whether the latest turn of `tracker` ran the forget-me action."""
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return False
        if isinstance(event, ActionExecuted) and event.action_name == FORGET_ACTION:
            return True
    return False


class PrivacySQLTrackerStore(SQLTrackerStore):
    """The SQL tracker store (SQLite or PostgreSQL), which deletes a user's events on request."""

    @cached_property
    def _statements(self) -> Dict[str, Any]:
        """Rasa's queries (`SQLTrackerStore._event_query`) as statements built once: the events of
        a conversation, of its latest session (from the latest `session_started` on, by
        timestamp), and how many the latest session holds."""
        events = self.SQLEvent.__table__
        mine = events.c.sender_id == sa.bindparam("sender_id")
        session_start = sa.select(sa.func.max(events.c.timestamp)).where(
            mine, events.c.type_name == SessionStarted.type_name).scalar_subquery()
        latest = sa.and_(mine, sa.or_(events.c.timestamp >= session_start, session_start.is_(None)))
        return {"all": sa.select(events.c.data).where(mine).order_by(events.c.id),
                "latest": sa.select(events.c.data).where(latest).order_by(events.c.id),
                "latest_count": sa.select(sa.func.count()).select_from(events).where(latest),
                "insert": events.insert()}

    async def _retrieve(self, sender_id: Text, fetch_events_from_all_sessions: bool
                        ) -> Optional[DialogueStateTracker]:
        query = self._statements["all" if fetch_events_from_all_sessions else "latest"]
        with self.session_scope() as session:
            rows = session.execute(query, {"sender_id": sender_id}).scalars().all()
        if not self.domain or not rows:
            return None
        return DialogueStateTracker.from_dict(sender_id, [json.loads(data) for data in rows], self.domain.slots)

    async def _append(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        with self.session_scope() as session:
            stored = session.execute(self._statements["latest_count"], {"sender_id": tracker.sender_id}).scalar()
            rows = []
            for event in itertools.islice(tracker.events, stored, len(tracker.events)):
                data = event.as_dict()
                rows.append({"sender_id": tracker.sender_id, "type_name": event.type_name,
                             "timestamp": data.get("timestamp"), "action_name": data.get("name"),
                             "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
                             "data": json.dumps(data)})
            if rows:
                session.execute(self._statements["insert"], rows)
                session.commit()

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Appends the turn's events, or deletes the whole conversation after forget-me."""
        if not forgets(tracker):
            await self._append(tracker)
            return
        with self.session_scope() as session:
            session.query(self.SQLEvent).filter(self.SQLEvent.sender_id == tracker.sender_id).delete(
                synchronize_session=False)
            session.commit()
        from bot.forget import forget

        # the confirmation just sent left a delivery status with the user's number
        await asyncio.to_thread(forget, tracker.sender_id)

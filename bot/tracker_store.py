"""Rasa's SQL tracker store, able to forget a user completely, and lighter per message.

When `action_forget_me` has run in a turn, the store deletes every stored event of that
conversation instead of appending the turn, so nothing the user said remains.

Rasa loads a conversation as one ORM object per stored event and appends a turn one ORM object
at a time; the same queries here read only the `data` column and insert the turn in one
statement (the rows, their order and the session boundaries are Rasa's).
"""
from __future__ import annotations

import asyncio
import itertools
import json
from typing import Optional, Text

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, UserUttered
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

    async def _retrieve(self, sender_id: Text, fetch_events_from_all_sessions: bool
                        ) -> Optional[DialogueStateTracker]:
        with self.session_scope() as session:
            rows = self._event_query(session, sender_id, fetch_events_from_all_sessions) \
                .with_entities(self.SQLEvent.data).all()
        if not self.domain or not rows:
            return None
        return DialogueStateTracker.from_dict(sender_id, [json.loads(data) for (data,) in rows], self.domain.slots)

    async def _append(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        with self.session_scope() as session:
            stored = self._event_query(session, tracker.sender_id, fetch_events_from_all_sessions=False).count()
            rows = []
            for event in itertools.islice(tracker.events, stored, len(tracker.events)):
                data = event.as_dict()
                rows.append({"sender_id": tracker.sender_id, "type_name": event.type_name,
                             "timestamp": data.get("timestamp"), "action_name": data.get("name"),
                             "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
                             "data": json.dumps(data)})
            if rows:
                session.execute(self.SQLEvent.__table__.insert(), rows)
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

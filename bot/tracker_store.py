"""Rasa's SQL tracker store, able to forget a user completely.

When `action_forget_me` has run in a turn, the store deletes every stored event of that
conversation instead of appending the turn, so nothing the user said remains.
"""
from __future__ import annotations

import asyncio

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

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

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Appends the turn's events, or deletes the whole conversation after forget-me."""
        if not forgets(tracker):
            await super().save(tracker)
            return
        with self.session_scope() as session:
            session.query(self.SQLEvent).filter(self.SQLEvent.sender_id == tracker.sender_id).delete(
                synchronize_session=False)
            session.commit()
        from bot.forget import forget

        # the confirmation just sent left a delivery status with the user's number
        await asyncio.to_thread(forget, tracker.sender_id)

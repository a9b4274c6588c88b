"""Forgetting a user on request."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.context import language_of
from bot.forget import forget


class ActionForgetMe(Action):
    """Erases the user everywhere (`bot.forget.forget`) and confirms in their language; the
    conversation itself is deleted by the tracker store at the end of this turn."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_forget_me"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Erases and confirms."""
        language = language_of(tracker)
        forget(tracker.sender_id, tracker.events)
        dispatcher.utter_message(response="utter_forget_done", language=language)
        return []

"""Handing the conversation to a person: a ticket for the advisors, the bot falls silent."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.context import intent_name, language_of, programme_of
from bot import programme as programmes
from bot.handoff import hours, tickets
from bot.phone import country_of
from bot.storage import utcnow


def reason_of(tracker: Tracker) -> str:
    """Why the conversation goes to an advisor: sensitive, repeated_fallback or user_request."""
    if (tracker.latest_message or {}).get("sensitive"):
        return "sensitive"
    if intent_name(tracker) == "nlu_fallback" or (tracker.get_slot("fallback_count") or 0) >= 2:
        return "repeated_fallback"
    return "user_request"


class ActionRequestAdvisor(Action):
    """Opens a ticket for the advisors, tells the user what happens next and how long it takes,
    and pauses the bot until an advisor hands the conversation back."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_request_advisor"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Opens (or finds) the ticket, utters the wait, pauses the conversation."""
        country = tracker.get_slot("country") or country_of(tracker.sender_id)
        programme = programme_of(tracker) or programmes.for_country(country) or programmes.default()
        reason = reason_of(tracker)
        now = utcnow()
        tickets.open_ticket(tracker.sender_id, reason, tracker.get_latest_input_channel() or "unknown",
                            language_of(tracker), country, programme.id, now=now)
        if reason == "sensitive":
            dispatcher.utter_message(response="utter_handoff_sensitive")
        wait = hours.wait(programme, now)
        if wait.open_now:
            dispatcher.utter_message(response="utter_handoff_open", minutes=wait.minutes)
        else:
            dispatcher.utter_message(response="utter_handoff_closed", next_open=wait.next_open.isoformat())
        return [SlotSet("fallback_count", 0), ConversationPaused()]

"""Talking to a person. Until the advisor handoff exists, the assistant gives the contact."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.context import programme_of
from bot import programme as programmes


class ActionRequestAdvisor(Action):
    """Tells the user how to reach an advisor of their programme."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_request_advisor"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Utters the office, phone and hours."""
        office = (programme_of(tracker) or programmes.default()).main_office
        dispatcher.utter_message(response="utter_advisor_contact", office=office["name"],
                                 phone=office["phone"], hours=office["hours"])
        return []

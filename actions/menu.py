"""The main menu and its four sub-menus, and a "yes" to the step an answer offered."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher

from actions.context import entity, previous_response
from actions.faq import answer
from bot import faq
from bot.buttons import offered_payload

SUBMENUS = {"loans", "grants", "registration", "admin"}


class ActionShowMenu(Action):
    """Shows the main menu, or the sub-menu a menu button asked for."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_show_menu"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Utters `utter_menu_<menu>` or `utter_help`."""
        menu = entity(tracker, "menu")
        dispatcher.utter_message(response=f"utter_menu_{menu}" if menu in SUBMENUS else "utter_help")
        return []


# what taking an offered step means for the intents an offer can carry (FAQ topics are answered)
OFFERED_ACTIONS = {"request_advisor": "action_request_advisor", "calculate_repayment": "loan_form"}


class ActionAffirm(Action):
    """A "yes": takes the step the previous answer offered, else asks what to do next."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_affirm"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Answers the offered topic or runs the offered action; `utter_affirm` without an offer."""
        payload = offered_payload(previous_response(tracker)) or ""
        intent, _, entities = payload.lstrip("/").partition("{")
        if intent == "faq":
            topic = json.loads("{" + entities).get("faq_topic")
            if topic in faq.TOPICS:
                return answer(dispatcher, tracker, topic)
        if intent in OFFERED_ACTIONS:
            return [FollowupAction(OFFERED_ACTIONS[intent])]
        dispatcher.utter_message(response="utter_affirm")
        return []

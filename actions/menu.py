"""The main menu and its four sub-menus."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.context import entity

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

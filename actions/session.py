"""The start of a new conversation session, carrying over only what the user last told us."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

NOT_CARRIED = {"requested_slot", "fallback_count"}  # they belong to the session that ended


class ActionSessionStart(Action):
    """Starts a session with one `SlotSet` per slot that has a value.

    Rasa's own `action_session_start` copies every `SlotSet` event of the old session, so a long
    conversation starts each new session with hundreds of events that Rasa then reloads on
    every message; the final values are all a new session needs."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_session_start"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """`session_started`, the slots' last values, then listen."""
        events: List[Dict[Text, Any]] = [SessionStarted()]
        if (domain.get("session_config") or {}).get("carry_over_slots_to_new_session", True):
            events += [SlotSet(name, value) for name, value in sorted(tracker.slots.items())
                       if value is not None and name not in NOT_CARRIED]
        events.append(ActionExecuted("action_listen"))
        return events

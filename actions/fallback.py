"""What the assistant says when it does not understand, or cannot help."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.context import language_of, previous_response, programme_of, user_text
from actions.faq import answer, topic_of
from bot import follow_ups, unanswered


def _record(tracker: Tracker, reason: str) -> None:
    programme = programme_of(tracker)
    unanswered.record(user_text(tracker), language_of(tracker), reason, programme.id if programme else None)


def fallbacks_in_a_row(tracker: Tracker) -> int:
    """How many of the user's latest messages in a row the assistant did not understand,
    this one included (one answered from the context of the previous answer was understood)."""
    count = 0
    answered = False
    for event in reversed(tracker.events):
        if event.get("event") == "bot":
            answered = answered or follow_ups.topic_of_response(
                (event.get("metadata") or {}).get("utter_action")) is not None
        elif event.get("event") == "user":
            if answered or ((event.get("parse_data") or {}).get("intent") or {}).get("name") != "nlu_fallback":
                break
            count += 1
            answered = False
    return count


class ActionFallback(Action):
    """Not understood: says so in the user's language, offers the menu and an advisor. The
    second time in a row, the conversation goes to an advisor."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_fallback"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Answers a short follow-up the previous answer makes clear ("how much is it?" after a
        grant answer); else records the question for staff, apologises, or hands over after two
        in a row."""
        if follow_ups.topic_of_response(previous_response(tracker)):
            topic = topic_of(tracker, understood=False)
            if topic is not None:
                return answer(dispatcher, tracker, topic)
        _record(tracker, "fallback")
        count = max(fallbacks_in_a_row(tracker), 1)
        if count >= 2:
            return [SlotSet("fallback_count", count), FollowupAction("action_request_advisor")]
        dispatcher.utter_message(response="utter_fallback")
        return [SlotSet("fallback_count", count)]


class ActionOutOfScope(Action):
    """Out of scope: says what the assistant covers, keeps the question for staff."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_out_of_scope"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Records the question and answers with the scope and the menu."""
        _record(tracker, "out_of_scope")
        dispatcher.utter_message(response="utter_out_of_scope")
        return []

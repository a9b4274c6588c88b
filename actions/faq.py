"""Answering FAQ questions with the user's programme facts, asking the country once if needed."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.context import entity, previous_response, programme_of, user_text
from bot import faq, follow_ups, profiles
from bot import programme as programmes
from bot.phone import country_of


def topic_of(tracker: Tracker, understood: bool = True) -> Optional[str]:
    """The FAQ topic of the latest message: from a menu button, else the response selector's,
    read in the light of the answer just given ("how do I apply?" after a grant answer)."""
    topic = entity(tracker, "faq_topic")
    if not topic:
        previous = follow_ups.topic_of_response(previous_response(tracker))
        topic = follow_ups.in_context(topic_ranking(tracker), previous, understood)
    return topic if topic in faq.TOPICS else None


def topic_ranking(tracker: Tracker) -> List[Tuple[str, float]]:
    """The FAQ topics the model saw in the latest message, best first, with their confidence."""
    selector = ((tracker.latest_message or {}).get("response_selector") or {}).get("faq") or {}
    ranking = [(str(r.get("intent_response_key") or ""), float(r.get("confidence") or 0.0))
               for r in selector.get("ranking") or []]
    if not ranking:
        key = ((selector.get("response") or {}).get("intent_response_key")) or ""
        ranking = [(key, float((selector.get("response") or {}).get("confidence") or 0.0))]
    return [(key.split("/", 1)[1], confidence) for key, confidence in ranking if key.startswith("faq/")]


def utter_answer(dispatcher: CollectingDispatcher, topic: str, programme: programmes.Programme) -> None:
    """Sends the answer to `topic` with `programme`'s facts."""
    key, variables = faq.answer(topic, programme)
    dispatcher.utter_message(response=key, **variables)


def country_choices() -> List[Dict[str, str]]:
    """One button per country the assistant serves."""
    return [{"title": f"country@{c}", "payload": '/choose_country{"country":"%s"}' % c}
            for c in programmes.countries()]


ANSWERS_THE_FORM = ("loan_amount", "loan_term")


class ActionAnswerFaq(Action):
    """Answers a `faq/<topic>` question."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_answer_faq"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Utters the answer, or asks the user's country first when the answer depends on it.

        While the calculator waits for an amount or a duration, what the user types is that
        answer ("a lot of money" reads like a question about loans): the form checks it."""
        awaited = tracker.get_slot("requested_slot")
        if (tracker.active_loop or {}).get("name") == "loan_form" and awaited in ANSWERS_THE_FORM:
            from actions.calculator import ValidateLoanForm  # Rasa skips the form's own check here

            check = getattr(ValidateLoanForm(), f"validate_{awaited}")
            return [SlotSet(name, value) for name, value in
                    check(user_text(tracker), dispatcher, tracker, domain).items()]
        topic = topic_of(tracker)
        if topic is None:
            dispatcher.utter_message(response="utter_fallback")
            return []
        return answer(dispatcher, tracker, topic)


def answer(dispatcher: CollectingDispatcher, tracker: Tracker, topic: str) -> List[Dict]:
    """Answers `topic` with the user's programme facts, or asks their country first when the
    answer depends on it and no country is known (the topic then waits in `pending_topic`)."""
    programme = programme_of(tracker)
    events: List[Dict] = []
    if programme is None:
        country = country_of(tracker.sender_id)
        programme = programmes.for_country(country) if country else None
        if programme is not None:
            events.append(SlotSet("country", programme.country))
    if programme is None and faq.needs_country(topic):
        dispatcher.utter_message(response="utter_ask_country", choices=country_choices())
        return [SlotSet("pending_topic", topic)]
    utter_answer(dispatcher, topic, programme or programmes.default())
    return events


class ActionChooseCountry(Action):
    """Remembers the user's country, then answers the question that was waiting for it."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_choose_country"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Sets `country` and answers `pending_topic`."""
        country = (entity(tracker, "country") or "").upper()
        programme = programmes.for_country(country)
        if programme is None or programme.country != country:
            dispatcher.utter_message(response="utter_ask_country", choices=country_choices())
            return []
        profiles.remember(tracker.sender_id, tracker.get_latest_input_channel(), country=country)
        dispatcher.utter_message(response="utter_country_set", country=country)
        pending = tracker.get_slot("pending_topic")
        if pending in faq.TOPICS:
            utter_answer(dispatcher, pending, programme)
        return [SlotSet("country", country), SlotSet("pending_topic", None)]

"""The user's language: kept up to date at every turn, and changed on request."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.context import entity, intent_name, metadata, user_text
from bot import profiles
from bot import programme as programmes
from bot.i18n import available_languages
from bot.language import SURE, detect, may_switch
from bot.phone import country_of

FIRST_GUESS = 0.35  # a first message only has to beat the programme default, itself a guess


def candidates(tracker: Tracker) -> List[str]:
    """The languages a message may be in: those of the user's programme when their country (or
    phone number) tells it, else all. A Tunisian's dialect is Arabic, not the Farsi langid sees."""
    programme = programmes.for_country(tracker.get_slot("country") or country_of(tracker.sender_id))
    offered = [l for l in (programme.languages if programme else []) if l in available_languages()]
    return offered or available_languages()


def _hint(tracker: Tracker) -> Optional[str]:
    hint = str(metadata(tracker).get("language_hint") or "").split("-")[0].split("_")[0].lower()
    return hint if hint in available_languages() else None


class ActionSetLanguage(Action):
    """Runs at every user turn, as Rasa's `action_validate_slot_mappings` (the one action of
    slot extraction whose messages Rasa keeps; a custom mapping action's are dropped).

    First contact: take the channel's hint (Telegram `language_code`, the browser), else the
    language the text is written in, else the programme's default; show the language menu.
    Later, until the user picks a language explicitly, follow a clearly detected language in a
    message the assistant understood (gibberish or an unknown word says nothing about language).
    The languages considered are those of the user's programme when it is known, and a move
    between two Arabic-script languages needs letters of the new one (`bot.language.may_switch`).
    """

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_validate_slot_mappings"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Returns the language slot events (and, at first contact, the language menu)."""
        current = tracker.get_slot("language")
        text = user_text(tracker)
        typed = bool(text) and not text.startswith("/")
        if intent_name(tracker) == "choose_language" and entity(tracker, "language"):
            return []  # action_choose_language handles an explicit choice
        guess = detect(text, candidates(tracker)) if typed else None
        if current is None:
            language = _hint(tracker)
            if language is None and guess and guess.confidence >= FIRST_GUESS:
                language = guess.language
            language = language or programmes.default().default_language
            profiles.remember(tracker.sender_id, tracker.get_latest_input_channel(), language=language)
            dispatcher.utter_message(response="utter_language_menu", language=language)
            return [SlotSet("language", language)]
        understood = intent_name(tracker) not in ("nlu_fallback", "out_of_scope")
        if not tracker.get_slot("language_chosen") and understood and guess and guess.confidence >= SURE \
                and guess.language != current and may_switch(text, current, guess.language):
            profiles.remember(tracker.sender_id, tracker.get_latest_input_channel(), language=guess.language)
            return [SlotSet("language", guess.language)]
        return []


class ActionChooseLanguage(Action):
    """Switches to the language the user named, or shows the language menu."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_choose_language"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Sets the language and confirms it in that language, or offers the menu."""
        language = (entity(tracker, "language") or "").lower()
        if language not in available_languages():
            dispatcher.utter_message(response="utter_language_menu")
            return []
        profiles.remember(tracker.sender_id, tracker.get_latest_input_channel(), language=language)
        dispatcher.utter_message(response="utter_language_changed", language=language)
        return [SlotSet("language", language), SlotSet("language_chosen", True)]

"""Small readers of the rasa-sdk tracker shared by the actions."""
from __future__ import annotations

from typing import Any, Dict, Optional

from rasa_sdk import Tracker

from bot import programme as programmes
from bot.programme import Programme


def user_text(tracker: Tracker) -> str:
    """The user's latest message as they typed it (before normalisation)."""
    latest: Dict[str, Any] = tracker.latest_message or {}
    return latest.get("original_text") or latest.get("text") or ""


def metadata(tracker: Tracker) -> Dict[str, Any]:
    """The channel metadata of the latest user message."""
    return (tracker.latest_message or {}).get("metadata") or {}


def intent_name(tracker: Tracker) -> Optional[str]:
    """The intent of the latest user message."""
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def entity(tracker: Tracker, name: str) -> Optional[str]:
    """The first value of entity `name` in the latest message."""
    value = next(tracker.get_latest_entity_values(name), None)
    return str(value) if value is not None else None


def programme_of(tracker: Tracker) -> Optional[Programme]:
    """The user's programme: by their country, or the only one; None when it must be asked."""
    return programmes.for_country(tracker.get_slot("country"))


def language_of(tracker: Tracker) -> str:
    """The user's language, or the default programme's language."""
    return tracker.get_slot("language") or programmes.default().default_language


def previous_response(tracker: Tracker) -> Optional[str]:
    """The response key of the assistant's last message before the user's latest one."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if seen_user:
                return None
            seen_user = True
        elif event.get("event") == "bot" and seen_user:
            return (event.get("metadata") or {}).get("utter_action")
    return None

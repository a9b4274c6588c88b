"""Understanding a numbered reply ("2", "٢", "۲") as the button it points at.

A user on SMS, or one who prefers typing, answers a menu with its number. The menu is the
last bot message of the conversation that had buttons, read from the tracker, so this works
across restarts and replicas without state of its own.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from rasa.shared.core.events import BotUttered, UserUttered

from bot.text import fold_digits

_NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")


def last_buttons(events: List[Any]) -> List[Dict[str, Any]]:
    """Buttons of the latest bot message, if the user has not written since it was sent."""
    for event in reversed(events):
        if isinstance(event, UserUttered):
            return []
        if isinstance(event, BotUttered) and event.data.get("buttons"):
            return list(event.data["buttons"])
    return []


def payload_for_reply(text: str, events: List[Any]) -> Optional[str]:
    """The payload chosen by a numbered reply to the latest menu, or None."""
    match = _NUMBER.match(fold_digits(text or ""))
    if not match:
        return None
    buttons = last_buttons(events)
    index = int(match.group(1)) - 1
    if 0 <= index < len(buttons):
        return buttons[index].get("payload")
    return None

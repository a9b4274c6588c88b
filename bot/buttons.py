"""The buttons of each response (`bot/buttons.yml`), and the step an answer offers.

An answer that ends with an offer ("Do you want the list of documents?") marks the button of
that step `offer: true`; a "yes" to the answer takes it (`actions/menu.py`).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

BUTTONS_PATH = Path(__file__).with_name("buttons.yml")


@lru_cache(maxsize=1)
def button_table() -> Dict[str, List[Dict[str, Any]]]:
    """The buttons of each response key."""
    return yaml.safe_load(BUTTONS_PATH.read_text(encoding="utf-8")) or {}


def offered_payload(response_key: Optional[str]) -> Optional[str]:
    """The payload of the step a response offers with its closing question, or None."""
    for button in button_table().get(response_key or "") or []:
        if button.get("offer"):
            return button["payload"]
    return None

"""Phone numbers of SMS and WhatsApp users."""
from __future__ import annotations

from typing import Optional

import phonenumbers


def country_of(sender_id: str) -> Optional[str]:
    """The ISO country of a sender id that is a phone number (`+216...`, `whatsapp:+93...`)."""
    number = (sender_id or "").split(":", 1)[-1]
    if not number.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(parsed) if phonenumbers.is_possible_number(parsed) else None

"""Questions the assistant could not answer, kept for programme staff without their sender."""
from __future__ import annotations

from typing import Optional

from bot.storage import UnansweredQuestion, session

MAX_STORED_LENGTH = 1000


def record(text: str, language: Optional[str], reason: str, programme: Optional[str]) -> None:
    """Stores one unanswered message with its language, reason and time (no sender id)."""
    if not text or text.startswith("/"):
        return
    with session() as db, db.begin():
        db.add(UnansweredQuestion(text=text[:MAX_STORED_LENGTH], language=language,
                                  reason=reason, programme=programme))

"""Reading a short follow-up question in the light of the answer just given.

"How do I apply?" right after the grant amount means the grant, not the loan the model
leans to; the groups of topics that such questions confuse live in ``data/follow_ups.yml``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

from bot.faq import TOPICS

DATA_FILE = Path(__file__).parent / "data" / "follow_ups.yml"
# A second guess is close enough at this share of the best one's confidence...
CLOSE_SHARE = 0.1
# ...and, for a message the model did not understand at all, at this confidence.
SURE_WHEN_NOT_UNDERSTOOD = 0.15
RESPONSE_PREFIX = "utter_faq/"


@lru_cache(maxsize=1)
def groups() -> Dict[str, Dict[str, List[str]]]:
    """Group name -> area -> the topics a follow-up question of the group means in that area."""
    with DATA_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def area_of(topic: Optional[str]) -> Optional[str]:
    """The area of a topic ("grant" for grant_amount), or None."""
    return topic.split("_", 1)[0] if topic else None


def topic_of_response(response: Optional[str]) -> Optional[str]:
    """The FAQ topic an answer's response key belongs to ("utter_faq/loan_late_payment_no_fee"
    -> "loan_late_payment"), or None for any other response."""
    if not response or not response.startswith(RESPONSE_PREFIX):
        return None
    key = response[len(RESPONSE_PREFIX):].split(".", 1)[0]
    matches = [topic for topic in TOPICS if key == topic or key.startswith(topic + "_")]
    return max(matches, key=len) if matches else None


def in_context(ranking: Sequence[Tuple[str, float]], previous_topic: Optional[str],
               understood: bool = True) -> Optional[str]:
    """The topic to answer: the model's best (first of `ranking`, topic and confidence), or a
    close second guess in the area of `previous_topic` when both belong to one group.

    For a message the model did not understand (`understood` False) a topic is only returned
    when it comes from the context; None means nothing fits."""
    if not ranking:
        return None
    best, best_confidence = ranking[0]
    area = area_of(previous_topic)
    confidence = dict(ranking)
    floor = SURE_WHEN_NOT_UNDERSTOOD if not understood else CLOSE_SHARE * best_confidence
    for group in groups().values():
        in_area = group.get(area) or []
        if best in in_area or not any(best in topics for topics in group.values()):
            continue
        fitting = [t for t in in_area if confidence.get(t, 0.0) >= floor]
        if fitting:
            return max(fitting, key=lambda t: confidence[t])
    return best if understood else None

"""Messages that go straight to an advisor: a debt the person cannot pay, a threat, a health
or legal emergency. The phrases are data, one file per language in `bot/data/sensitive/`,
edited by programme staff; every language's list is checked, whatever the user's language."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Tuple

import yaml

from bot.text import normalize

FOLDER = Path(__file__).resolve().parent / "data" / "sensitive"
_MARKS = re.compile("[\u064b-\u065f\u0670\u06d6-\u06ed\u200c\u200d]")
_ALEF = str.maketrans({"\u0623": "\u0627", "\u0625": "\u0627", "\u0622": "\u0627", "\u0671": "\u0627"})
_NOT_WORD = re.compile(r"[^\w]+")


def fold(text: str) -> str:
    """The form phrases and messages are compared in: normalised, without diacritics or
    zero-width joiners or accents, one alef, lower case, words separated by single spaces."""
    text = _MARKS.sub("", normalize(text or "")).translate(_ALEF).casefold()
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return " ".join(_NOT_WORD.sub(" ", text).split())


@lru_cache(maxsize=1)
def phrases() -> Tuple[Tuple[str, str], ...]:
    """(language, folded phrase) for every phrase of every language file."""
    found: List[Tuple[str, str]] = []
    for path in sorted(FOLDER.glob("*.yml")):
        for phrase in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("phrases") or []:
            folded = fold(str(phrase))
            if folded:
                found.append((path.stem, folded))
    return tuple(found)


def match(text: str) -> Optional[str]:
    """The sensitive phrase `text` contains (as whole words), or None."""
    padded = f" {fold(text)} "
    for _, phrase in phrases():
        if f" {phrase} " in padded:
            return phrase
    return None

"""Detecting the language of free text among the languages the assistant speaks.

langid.py (its model ships inside the package, nothing is downloaded) gives a first guess
restricted to our languages; letters that only one language of the Arabic script uses, and
frequent romanized words (Roman Urdu, Arabizi, Finglish), correct it. Short texts give a
low confidence: callers keep the language they have unless the guess is sure.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

import yaml

from bot.text import normalize


HINTS_PATH = Path(__file__).parent / "data" / "language_hints.yml"
_ARABIC_SCRIPT = re.compile("[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")
_LATIN = re.compile("[A-Za-z\u00c0-\u024f]")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
SURE = 0.8
ARABIC_SCRIPT_LANGUAGES = ("ar", "fa", "ps", "ur")


@dataclass(frozen=True)
class Guess:
    """A detected language and how sure the detector is (0 to 1)."""

    language: str
    confidence: float


@lru_cache(maxsize=1)
def _hints() -> Dict:
    return yaml.safe_load(HINTS_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=8)
def _identifier(languages: Tuple[str, ...]):
    from langid.langid import LanguageIdentifier, model

    identifier = LanguageIdentifier.from_modelstring(model, norm_probs=True)
    identifier.set_languages([l for l in languages if l in identifier.nb_classes] or ["en"])
    return identifier


def detect(text: str, languages: Iterable[str]) -> Optional[Guess]:
    """Guesses which of `languages` `text` is written in, or None when nothing points anywhere."""
    languages = tuple(sorted(set(languages)))
    if not text or not languages:
        return None
    words = _WORD.findall(text.lower())
    if not words:
        return None
    arabic = len(_ARABIC_SCRIPT.findall(text))
    latin = len(_LATIN.findall(text))
    hints = _hints()
    if arabic > latin:
        candidates = [l for l in ("ar", "fa", "ps", "ur") if l in languages]
        if not candidates:
            return None
        for language in ("ps", "ur"):
            if language in candidates and any(c in text for c in hints["letters"][language]):
                return Guess(language, 0.9)
        if len(candidates) == 1:
            return Guess(candidates[0], 0.85)
        language, probability = _identifier(tuple(candidates)).classify(unicodedata.normalize("NFKC", text))
        if "ar" in candidates and any(c in text for c in hints["letters"]["ar"]):
            language, probability = "ar", max(probability, 0.85)
        elif language == "ar" and "fa" in candidates and any(c in text for c in hints["letters"]["fa"]):
            language, probability = "fa", 0.7
        else:
            language, probability = _by_words(text, candidates, language, probability)
        return Guess(language, _damp(probability, len(words)))
    tokens = re.findall(r"\w+", text.lower())
    romanized = {l: sum(w in set(hints["romanized"].get(l, [])) for w in tokens) for l in languages}
    best = max(romanized, key=romanized.get)
    if romanized[best] >= 2 or (romanized[best] == 1 and len(words) <= 2):
        return Guess(best, 0.85 if romanized[best] >= 2 else 0.6)
    latin_languages = tuple(l for l in languages if l in ("en", "fr")) or languages
    language, probability = _identifier(latin_languages).classify(text)
    return Guess(language, _damp(probability, len(words)))


def _fold(text: str) -> str:
    """The model's spelling (`bot.text.normalize`: one yeh, one kaf, no tatweel) without
    zero-width joiners, so that "می‌خوام" and "میخوام" are one word."""
    return normalize(text).replace("\u200c", "").replace("\u200d", "")


@lru_cache(maxsize=1)
def _word_lists() -> Dict[str, frozenset]:
    return {l: frozenset(_fold(str(w)) for w in words) for l, words in _hints()["words"].items()}


def _by_words(text: str, candidates: Iterable[str], language: str, probability: float) -> Tuple[str, float]:
    """langid's guess, unless the text's own frequent words name another candidate more often
    than any other: "باش نحب ناخذ قرض" is Arabic, "زه غوارم پور واخلم" Pashto."""
    tokens = _WORD.findall(_fold(text))
    lists = _word_lists()
    votes = {l: sum(t in lists.get(l, ()) for t in tokens) for l in candidates}
    best = max(votes, key=votes.get)
    if best == language or votes[best] == 0 or any(v >= votes[best] for l, v in votes.items() if l != best):
        return language, probability
    return best, 0.85 if votes[best] - max(v for l, v in votes.items() if l != best) >= 2 else 0.7


def may_switch(text: str, current: str, new: str) -> bool:
    """Whether `text`, detected as `new`, may move a user writing `current` to `new`.

    From an Arabic-script language to a Latin-script one, never: people write their own language
    in Latin letters (Arabizi, Roman Urdu, Finglish), which langid reads as English. Between two
    Arabic-script languages, only when the text has a letter the new language uses and the old
    one lacks: langid takes Maghrebi Arabic ("نحب ناخذ قرض باش نحل حانوت") for Farsi.
    """
    if current not in ARABIC_SCRIPT_LANGUAGES:
        return True
    if new not in ARABIC_SCRIPT_LANGUAGES:
        return False
    alphabet = _hints()["alphabet"]
    return any(c in text for c in set(alphabet[new]) - set(alphabet[current]))


def _damp(probability: float, words: int) -> float:
    """Short texts are weak evidence whatever the classifier says."""
    return float(probability) * min(1.0, 0.4 + 0.2 * words)

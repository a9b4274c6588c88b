"""Text normalisation shared by the NLU pipeline, the number parser and the channels.

Rasa's whitespace tokenizer drops words written in Arabic presentation forms and
keeps tatweel, and the same word reaches us typed with Arabic or Persian letters and
digits. `normalize` folds all of these to one spelling before the model sees it.
"""
from __future__ import annotations

import re
import unicodedata

TATWEEL = "\u0640"
_LETTERS = str.maketrans(
    {
        "\u064a": "\u06cc",  # Arabic yeh -> Farsi yeh
        "\u0649": "\u06cc",  # alef maksura -> Farsi yeh
        "\u0643": "\u06a9",  # Arabic kaf -> keheh
    }
)
_ARABIC_DECIMAL, _ARABIC_THOUSANDS = "\u066b", "\u066c"
_INVISIBLE = re.compile("[\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_SPACES = re.compile(r"\s+")


def fold_digits(text: str) -> str:
    """Writes every decimal digit as ASCII 0-9, and the Arabic separators ٫ ٬ as "." and ",".

    Covers Arabic-Indic (٠-٩), Persian (۰-۹) and every other Unicode decimal digit.
    """
    out = []
    for char in text:
        if char == _ARABIC_DECIMAL:
            out.append(".")
        elif char == _ARABIC_THOUSANDS:
            out.append(",")
        elif char.isdigit() and unicodedata.decimal(char, None) is not None:
            out.append(str(unicodedata.decimal(char)))
        else:
            out.append(char)
    return "".join(out)


def normalize(text: str) -> str:
    """Return the spelling of `text` the model is trained and run on.

    NFKC (presentation forms become ordinary letters), no tatweel, no bidi controls,
    one yeh and one kaf, ASCII digits, single spaces. Zero-width non-joiners are kept:
    they separate Persian word parts.
    """
    text = unicodedata.normalize("NFKC", text)
    text = text.replace(TATWEEL, "")
    text = _INVISIBLE.sub("", text)
    text = text.translate(_LETTERS)
    text = fold_digits(text)
    return _SPACES.sub(" ", text).strip()

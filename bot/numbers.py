"""Numbers, amounts and loan durations as people type them in chat, in six languages.

Words for numbers, multipliers ("mille", "lakh"), duration units and currencies
live in ``bot/data/number_words.yml``; digit separators follow the language's
locale (Babel). Every public function returns ``None`` for text it cannot read
and never raises on any ``str``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, localcontext
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional, TypeVar, Union

import babel.numbers
import yaml

from bot.text import fold_digits

LANGUAGES = ("en", "fr", "ar", "fa", "ps", "ur")
DATA_FILE = Path(__file__).parent / "data" / "number_words.yml"
MAX_TEXT_LENGTH = 200
MAX_PHRASE_TOKENS = 4
# Longer than any microloan: "3000 over a year" is an amount and a year, not 3000 years.
MAX_FOUND_DURATION = {"months": 120, "weeks": 520, "days": 3650}
T = TypeVar("T")

_ARABIC_DECIMAL = "\u066b"
_ARABIC_THOUSANDS = "\u066c"
_LETTER_VARIANTS = str.maketrans(
    {
        "\u064a": "\u06cc", "\u0649": "\u06cc", "\u06d0": "\u06cc", "\u06cd": "\u06cc",  # ي ى ې ۍ -> ی
        "\u06d2": "\u06cc", "\u06d3": "\u06cc",  # ے ۓ -> ی
        "\u0643": "\u06a9", "\u06ab": "\u06af",  # ك -> ک, ګ -> گ
        "\u06c1": "\u0647", "\u06c2": "\u0647", "\u06be": "\u0647", "\u06d5": "\u0647",  # ہ ۂ ھ ە -> ه
        "\u06c0": "\u0647", "\u0629": "\u0647",  # ۀ ة -> ه
        "\u0623": "\u0627", "\u0625": "\u0627", "\u0622": "\u0627", "\u0671": "\u0627",  # أ إ آ ٱ -> ا
        "\u0624": "\u0648",  # ؤ -> و
        "\u0640": None,  # tatweel
        "\u200c": None, "\u200d": None, "\u200e": None, "\u200f": None, "\u061c": None, "\ufeff": None,
    }
)
_SPACES = re.compile(r"[\s\u00a0\u2007\u2009\u202f]+")
_SPACE_GROUPED = re.compile(r"(?<![0-9.,'])([0-9]{1,3})((?: [0-9]{3})+)(?![0-9])")
_TOKEN = re.compile(r"[0-9]+(?:['’.,][0-9]+)*|[^\W\d_]+|\S")
_WORD_HYPHEN = re.compile(r"(?<=[^\W\d_])[-‐‑–](?=[^\W\d_])")
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=[0-9])|(?<=[0-9])(?=[^\W\d_])")
_MINUS_SIGNS = {"-", "−", "‐", "‑", "–"}


def _normalize(text: str) -> str:
    """Fold width, case, digits, Arabic-script letter variants and marks; one space between words."""
    text = unicodedata.normalize("NFKC", text)
    text = fold_digits(text).casefold().translate(_LETTER_VARIANTS)
    text = "".join(char for char in text if unicodedata.category(char) != "Mn")
    text = _WORD_HYPHEN.sub(" ", text)
    text = _LETTER_DIGIT.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def _tokens(normalized: str) -> list[str]:
    return _TOKEN.findall(normalized)


# --- the word lists -------------------------------------------------------------------


@dataclass(frozen=True)
class _Word:
    """What a word means: number, article, multiplier, connector, unit, dual, currency or filler."""

    kind: str
    value: Union[Decimal, str, None] = None
    count: int = 0


@lru_cache(maxsize=None)
def _data() -> dict:
    with DATA_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@lru_cache(maxsize=None)
def _lexicon(lang: str) -> dict[tuple[str, ...], _Word]:
    """Phrase (as normalized tokens) -> meaning, for ``lang`` plus the entries common to all."""
    lexicon: dict[tuple[str, ...], _Word] = {}
    data = _data()
    for section in (data.get("common") or {}, data.get(lang) or {}):
        entries: list[tuple[object, _Word]] = []
        entries += [(word, _Word("filler")) for word in section.get("fillers", [])]
        entries += [(word, _Word("currency")) for word in section.get("currencies", [])]
        entries += [(word, _Word("connector")) for word in section.get("connectors", [])]
        for unit, words in (section.get("units") or {}).items():
            entries += [(word, _Word("unit", unit)) for word in words]
        for word, (count, unit) in (section.get("dual_units") or {}).items():
            entries.append((word, _Word("dual", unit, int(count))))
        for word, factor in (section.get("multipliers") or {}).items():
            entries.append((word, _Word("multiplier", Decimal(str(factor)))))
        entries += [(word, _Word("article", Decimal(1))) for word in section.get("articles", [])]
        for word, value in (section.get("numbers") or {}).items():
            entries.append((word, _Word("number", Decimal(str(value)))))
        for word, meaning in entries:
            key = tuple(_tokens(_normalize(str(word))))
            if key:
                lexicon[key] = meaning
    return lexicon


def _languages_to_try(lang: str) -> list[str]:
    primary = str(lang or "").replace("_", "-").split("-")[0].strip().lower()
    first = [primary] if primary in LANGUAGES else ["en"]
    return first + [other for other in LANGUAGES if other not in first]


@lru_cache(maxsize=None)
def _decimal_mark(lang: str) -> str:
    try:
        symbol = babel.numbers.get_decimal_symbol(lang)
    except Exception:  # Babel raises several error types for unknown locales.
        return "."
    return fold_digits(symbol) if symbol in (".", ",", _ARABIC_DECIMAL) else "."


# --- digits ---------------------------------------------------------------------------


def _digits_value(token: str, decimal_mark: str) -> Optional[Decimal]:
    """The value of a digit string with separators, or None when they make no sense."""
    token = token.replace("'", "").replace("’", "")
    marks = [char for char in token if char in ".,"]
    if not marks:
        return Decimal(token)
    if len(set(marks)) == 2:
        point = token[max(token.rfind("."), token.rfind(","))]
        if token.count(point) > 1:
            return None
        grouping = "," if point == "." else "."
        return Decimal(token.replace(grouping, "").replace(point, "."))
    mark = marks[0]
    groups = token.split(mark)
    if len(groups) > 2:
        # Repeated separators group thousands (or Indian lakhs: 1,00,000).
        if any(len(group) not in (2, 3) for group in groups[1:-1]) or len(groups[-1]) != 3:
            return None
        return Decimal("".join(groups))
    if mark != decimal_mark and len(groups[1]) == 3:
        return Decimal("".join(groups))
    return Decimal(".".join(groups))


# --- reading token streams ------------------------------------------------------------


@dataclass
class _Item:
    """A token or phrase read with a language's lexicon."""

    kind: str  # number, multiplier, connector, unit, dual, currency, filler, mark, minus, percent, unknown
    value: Union[Decimal, str, None] = None
    count: int = 0
    digits: bool = False
    joined: bool = False  # written with a conjunction prefix, as in "وعشرون"
    weak: bool = False  # an article ("a") or one letter ("k"): never a number on its own


def _read(tokens: list[str], lang: str, decimal_mark: str) -> list[_Item]:
    lexicon = _lexicon(lang)
    prefixes = {key[0] for key, word in lexicon.items() if word.kind == "connector" and len(key[0]) == 1}
    items: list[_Item] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token[0].isdigit():
            value = _digits_value(token, decimal_mark)
            items.append(_Item("number", value, digits=True) if value is not None else _Item("unknown"))
            i += 1
            continue
        for size in range(min(MAX_PHRASE_TOKENS, len(tokens) - i), 0, -1):
            word = lexicon.get(tuple(tokens[i:i + size]))
            if word is not None:
                weak = word.kind == "article" or len(tokens[i]) == 1
                kind = "number" if word.kind == "article" else word.kind
                items.append(_Item(kind, word.value, word.count, weak=weak))
                i += size
                break
        else:
            items.append(_unlisted(token, lexicon, prefixes))
            i += 1
    return items


def _unlisted(token: str, lexicon: dict[tuple[str, ...], _Word], prefixes: set[str]) -> _Item:
    """A token missing from the lexicon: a prefixed conjunction, an ISO code, punctuation or unknown."""
    # A one-letter conjunction is written joined to the next word: "وعشرون" is "و" + "عشرون".
    rest = lexicon.get((token[1:],)) if token[0] in prefixes else None
    if rest is not None and rest.kind == "number":
        return _Item("number", rest.value, joined=True)
    if token.isalpha() and len(token) == 3 and babel.numbers.is_currency(token.upper()):
        return _Item("currency")
    if token in _MINUS_SIGNS:
        return _Item("minus")
    if token == "%":
        return _Item("percent")
    if not token.isalnum():
        return _Item("mark")
    return _Item("unknown")


def _number_groups(items: list[_Item]) -> Optional[list[list[_Item]]]:
    """Split items into runs of number words; None when something makes the text unreadable."""
    groups: list[list[_Item]] = []
    current: list[_Item] = []
    for index, item in enumerate(items):
        if item.kind in ("unknown", "percent"):
            return None
        if item.kind == "minus":
            if index + 1 < len(items) and items[index + 1].kind == "number":
                return None
            continue
        if item.kind in ("number", "multiplier", "connector"):
            current.append(item)
            continue
        if current:
            groups.append(current)
            current = []
        if item.kind in ("unit", "dual"):
            groups.append([item])
    if current:
        groups.append(current)
    return groups


def _number_value(group: list[_Item]) -> Optional[Decimal]:
    """Value of a run like [2, mille, 500] or [20, 5] or [5, و, 20]; None if it is not one number."""
    while group and group[0].kind == "connector":
        group = group[1:]
    while group and group[-1].kind == "connector":
        group = group[:-1]
    if not group:
        return None
    total = Decimal(0)
    current: Optional[Decimal] = None
    previous: Optional[_Item] = None
    joined = False
    for item in group:
        if item.kind == "connector":
            joined = True
            continue
        if item.kind == "number":
            if current is None:
                current = item.value
            elif joined or item.joined or _adds_up(current, item, previous):
                current += item.value
            else:
                return None
        else:
            if current is None and item.weak:
                return None
            if item.value < 1000:
                current = (current if current is not None else Decimal(1)) * item.value
            elif current is None and (total or previous is not None):
                return None
            else:
                total += (current if current is not None else Decimal(1)) * item.value
                current = None
        joined = False
        previous = item
    return total + (current or 0)


def _adds_up(current: Decimal, item: _Item, previous: Optional[_Item]) -> bool:
    """Whether two numbers side by side form one (twenty five, cent vingt); never two digit strings."""
    if item.digits and previous is not None and previous.digits:
        return False
    if item.value >= current or current != current.to_integral_value() or current % 10:
        return False
    if item.value < 10 or current % Decimal(10) ** len(str(int(item.value))) == 0:
        return True
    # French counts 70, 80 and 90 on from 60 and 80: soixante-quinze, quatre-vingt-dix.
    return item.value < 20 and current % 20 == 0


# --- public parsers -------------------------------------------------------------------


def _prepare(text: object) -> Optional[list[str]]:
    if not isinstance(text, str) or len(text) > MAX_TEXT_LENGTH:
        return None
    normalized = _normalize(text)
    normalized = _SPACE_GROUPED.sub(lambda m: m.group(1) + m.group(2).replace(" ", ""), normalized)
    return _tokens(normalized)


def _decimal_mark_for(text: str, lang: str) -> str:
    # Someone who types the Arabic separators means ٫ as the decimal point whatever the locale.
    if _ARABIC_DECIMAL in text or _ARABIC_THOUSANDS in text:
        return "."
    primary = _languages_to_try(lang)[0]
    return _decimal_mark(primary)


def _amount_in(items: list[_Item]) -> Optional[Decimal]:
    groups = _number_groups(items)
    if groups is None or any(item.kind in ("unit", "dual") for item in items):
        return None
    groups = [group for group in groups if any(item.kind in ("number", "multiplier") for item in group)]
    if len(groups) != 1 or all(item.weak or item.kind == "connector" for item in groups[0]):
        return None
    value = _number_value(groups[0])
    if value is None or value < 0:
        return None
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value


def _first_reading(text: str, lang: str, extract: Callable[[list[_Item]], Optional[T]]) -> Optional[T]:
    """What ``extract`` finds in ``text`` read with ``lang``'s number words, then the others'."""
    try:
        tokens = _prepare(text)
        if not tokens:
            return None
        mark = _decimal_mark_for(text, lang)
        with localcontext() as context:
            context.prec = 60
            for candidate in _languages_to_try(lang):
                found = extract(_read(tokens, candidate, mark))
                if found is not None:
                    return found
    except (ArithmeticError, ValueError):
        return None
    return None


def parse_amount(text: str, lang: str) -> Optional[Decimal]:
    """The amount of money in ``text`` ("2 000", "2k", "٢ ألف", "Rs 5000"), or None.

    Separators follow ``lang``: "2.000" is two thousand in French but two in
    English, "2000,50" is a decimal in French. Currency symbols, codes and names
    around the number are ignored; any other word makes the text unreadable.
    """
    return _first_reading(text, lang, _amount_in)


def _duration_in(items: list[_Item]) -> Optional[tuple[int, str]]:
    if any(item.kind == "currency" for item in items):
        return None
    groups = _number_groups(items)
    if not groups:
        return None
    parts: list[tuple[Decimal, str]] = []
    pending: Optional[Decimal] = None
    for group in groups:
        head = group[0]
        if head.kind == "unit":
            parts.append((pending if pending is not None else Decimal(1), head.value))
            pending = None
        elif head.kind == "dual":
            if pending is not None:
                return None
            parts.append((Decimal(head.count), head.value))
        else:
            if pending is not None:
                return None
            pending = _number_value(group)
            if pending is None:
                return None
    if pending is not None or not parts:
        return None
    return _combine(parts)


def _combine(parts: list[tuple[Decimal, str]]) -> Optional[tuple[int, str]]:
    """Add parts like (1, years) + (6, months) into one whole count of months, weeks or days."""
    units = {unit for _, unit in parts}
    if units <= {"years", "months"}:
        total, unit = sum(count * (12 if u == "years" else 1) for count, u in parts), "months"
    elif units == {"weeks"}:
        total, unit = sum(count for count, _ in parts), "weeks"
    elif units <= {"weeks", "days"}:
        total, unit = sum(count * (7 if u == "weeks" else 1) for count, u in parts), "days"
    else:
        return None
    if any(count <= 0 for count, _ in parts) or total != total.to_integral_value():
        return None
    return int(total), unit


def parse_duration(text: str, lang: str) -> Optional[tuple[int, str]]:
    """A loan duration as (count, "months" | "weeks" | "days"), or None.

    Years become months ("one year" -> (12, "months")); "18 mois", "١٨ شهر",
    "سنتين", "۱۲ ماه", "یو کال", "18 mahine" are understood, as are sums like
    "1 year 6 months". A number without a unit is not a duration.
    """
    return _first_reading(text, lang, _duration_in)


def find_duration(text: str, lang: str) -> Optional[tuple[int, str]]:
    """The loan duration said somewhere in a sentence ("how much for 3000 over a year",
    "لمدة سنة"), as `parse_duration` reads it, or None.

    The longest run of up to `MAX_PHRASE_TOKENS` words that reads as a duration wins, so
    "1 year 6 months" is not taken for "6 months". A single month, week or day is not taken:
    in a sentence it says how often ("how much per month"), not for how long; nor is a
    time gone by ("I came back two years ago", "منذ سنتين").
    """
    if not isinstance(text, str):
        return None
    words = [w.strip(".,;:!?؟،؛()\"'«»") for w in text[:MAX_TEXT_LENGTH].split()]
    folded = [_normalize(word) for word in words]
    before, after = _past_markers(lang)
    gone_by: set[int] = set()
    for size in range(min(MAX_PHRASE_TOKENS, len(words)), 0, -1):
        for start in range(len(words) - size + 1):
            end = start + size
            found = parse_duration(" ".join(words[start:end]), lang)
            if found is None or found[0] <= 1 or found[0] > MAX_FOUND_DURATION[found[1]] \
                    or gone_by.intersection(range(start, end)):
                continue
            if any(tuple(folded[max(0, start - len(m)):start]) == m for m in before) \
                    or any(tuple(folded[end:end + len(m)]) == m for m in after):
                gone_by.update(range(start, end))
                continue
            return found
    return None


@lru_cache(maxsize=None)
def _past_markers(lang: str) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    """The words before and after a duration that make it a time gone by ("two years ago"),
    as normalized word tuples, for ``lang`` (number_words.yml ``past``)."""
    primary = _languages_to_try(lang)[0]
    past = (_data().get(primary) or {}).get("past") or {}

    def phrases(key: str) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(_normalize(str(m)).split()) for m in past.get(key) or [] if str(m).strip())

    return phrases("before"), phrases("after")

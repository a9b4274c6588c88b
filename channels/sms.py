"""SMS text: GSM-7 or UCS-2 encoding, segment counts, and pages that fit a segment budget.

An SMS segment carries 160 GSM-7 characters or 70 UCS-2 code units; a message of several
segments spends some on the concatenation header, leaving 153 and 67. Arabic, Farsi, Pashto
and Urdu need UCS-2; English and most French fit GSM-7 once typographic punctuation is
replaced. A reply longer than the budget is cut at a sentence into pages; every page but the
last ends with the "reply MORE" hint, and the numbered menu stays whole on the last page.

`python -m channels.sms report [--worst N]` (`make sms-report`) prints the median and worst
segment count per language over every response, rendered and shaped as the SMS channel sends it,
and with `--worst` the N costliest responses of each language.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import List, Sequence

MAX_SEGMENTS = 3
GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")  # each costs two septets (escape + character)

_TYPOGRAPHY = str.maketrans({
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "`": "'", "´": "'",
    "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"',
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-",
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " ", "\u2002": " ", "\u2003": " ",
    "•": "-", "·": "-",
    "\u200b": None, "\u200c": None, "\u200d": None, "\u200e": None, "\u200f": None,
    "\u2066": None, "\u2067": None, "\u2068": None, "\u2069": None, "\u061c": None, "\ufeff": None,
})
_ELLIPSIS = "…"
_GUILLEMETS = re.compile(r"«\s*|\s*»")  # French « x » becomes "x", not " x "
_LIGATURES = {"œ": "oe", "Œ": "OE", "ç": "c"}  # GSM-7 has Ç but not ç

# A page may end after a sentence (also Arabic ؟ and Urdu ۔) or at a line break.
_BREAK = re.compile(r"(?<=[.!?…؟۔])\s+|\n+")


def is_gsm7(text: str) -> bool:
    """Whether every character of `text` has a GSM-7 code."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _fold(ch: str) -> str:
    if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
        return ch
    if ch in _LIGATURES:
        return _LIGATURES[ch]
    base = unicodedata.normalize("NFD", ch)[0]
    return base if base != ch and base in GSM7_BASIC else ch


def prefer_gsm7(text: str) -> str:
    """`text` in GSM-7 when the language allows it; otherwise `text` unchanged.

    Typographic quotes, dashes, spaces and ellipses become plain ones, and a Latin letter GSM-7
    lacks becomes its base letter (French ê, ç, û: e, c, u; é, è, à, ù are GSM-7 and stay). A
    text in Arabic script needs UCS-2 anyway, where none of this saves anything, so it is kept.
    """
    plain = _GUILLEMETS.sub('"', text).translate(_TYPOGRAPHY).replace(_ELLIPSIS, "...")
    plain = "".join(_fold(ch) for ch in plain)
    return plain if is_gsm7(plain) else text


def encoding(text: str) -> str:
    """"GSM-7" or "UCS-2": the encoding a carrier uses for `text`."""
    return "GSM-7" if is_gsm7(text) else "UCS-2"


def _costs(text: str) -> List[int]:
    if is_gsm7(text):
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]  # UTF-16 code units


def segments(text: str) -> int:
    """How many SMS segments `text` takes (an escape pair or a surrogate pair is never split)."""
    gsm = is_gsm7(text)
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if gsm else (UCS2_SINGLE, UCS2_MULTI)
    costs = _costs(text)
    if sum(costs) <= single:
        return 1
    count, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            count, used = count + 1, 0
        used += cost
    return count


def fits(text: str, budget: int = MAX_SEGMENTS) -> bool:
    """Whether `text` takes at most `budget` segments."""
    return segments(text) <= budget


def _pieces(text: str) -> List[str]:
    """`text` cut after each sentence and line, each piece keeping its trailing separator."""
    pieces, start = [], 0
    for match in _BREAK.finditer(text):
        pieces.append(text[start:match.end()])
        start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return [p for p in pieces if p]


def _smaller(piece: str) -> List[str]:
    """A piece too long for one page, cut into lines, else words, else characters."""
    for pattern in (r"(?<=\n)", r"(?<=\s)"):
        parts = [p for p in re.split(pattern, piece) if p]
        if len(parts) > 1:
            return parts
    middle = max(1, len(piece) // 2)
    return [piece[:middle], piece[middle:]]


def paginate(text: str, more_hint: str, tail: str = "", budget: int = MAX_SEGMENTS) -> List[str]:
    """`text` (then `tail`, such as a numbered menu, kept whole when it fits) as pages of at most
    `budget` segments each; every page but the last ends with `more_hint` on its own line."""
    whole = "\n".join(part for part in (text.strip(), tail.strip()) if part)
    if fits(whole, budget):
        return [whole]
    pieces = _pieces(text.strip()) + (["\n" + tail.strip()] if tail.strip() else [])
    if pieces:
        pieces[-1] = pieces[-1].rstrip()
    pages: List[str] = []
    current = ""
    index = 0
    while index < len(pieces):
        rest = (current + "".join(pieces[index:])).strip()
        if fits(rest, budget):
            pages.append(rest)
            return pages
        candidate = current + pieces[index]
        if fits(candidate.strip() + "\n" + more_hint, budget):
            current, index = candidate, index + 1
        elif current.strip():
            pages.append(current.strip() + "\n" + more_hint)
            current = ""
        else:
            pieces[index:index + 1] = _smaller(pieces[index])
    if current.strip():
        pages.append(current.strip())
    return pages


def summary(counts: Sequence[int]) -> tuple:
    """(median, worst) of a list of segment counts."""
    ordered = sorted(counts)
    if not ordered:
        return 0, 0
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return median, ordered[-1]


def _sample_variables(programme) -> dict:
    """Realistic variables for every placeholder of the catalog, from one programme."""
    import datetime as dt

    from bot import calculator, faq

    variables: dict = {}
    for topic in faq.TOPICS:
        variables.update(faq.answer(topic, programme)[1])
    product = calculator.default_product(programme)
    today = dt.date.today()
    terms = calculator.terms_for(programme, product, programme.money(product["max_amount"]), 12,
                                 product.get("frequency", "months"), today)
    from bot.loans import build_schedule

    schedule = build_schedule(terms)
    variables.update(calculator.result(schedule, product, "months")[1])
    office = programme.main_office
    variables.update({
        "rows": calculator.rows(schedule), "due": today.isoformat(), "first": today.isoformat(),
        "example": str(product["min_amount"]), "country": programme.country,
        "office": office["name"], "phone": office.get("phone", ""), "hours": office.get("hours", {}),
        "next_open": dt.datetime.now(dt.timezone.utc).isoformat(), "minutes": 15, "days": 3,
        "period": 1, "max": product["max_amount"], "min": product["min_amount"],
    })
    return variables


_SAMPLES = {"money": "250", "number": "3", "percent": "5", "date": "2025-03-01", "country": "TN",
            "datetime": "2025-03-01T09:00:00+00:00", "time": "09:00"}


# Replies the SMS channel sends itself, whole, besides the NLG's responses.
CHANNEL_REPLIES = ("sms.stopped", "sms.started", "sms.help")
# Responses the actions never send on SMS or WhatsApp (`actions/calculator.py` sends the next
# three payments there instead of the whole table).
NOT_ON_SMS = {"utter_calc_schedule_table"}


def _response_keys(language: str) -> List[tuple]:
    """(key, is_plural) of every response of the catalog of `language` (not their SMS texts:
    the NLG picks those itself)."""
    from bot.i18n import SMS_VARIANT, translations

    keys = {(k, False) if isinstance(k, str) else (k[0], True) for k in translations(language)._catalog}
    return sorted(k for k in keys if k[0].startswith("utter_") and k[0] not in NOT_ON_SMS
                  and not k[0].endswith("." + SMS_VARIANT))


@dataclass
class Measure:
    """One response as the SMS channel sends it: segments of the whole text and of each page."""

    key: str
    whole: int
    pages: List[int]
    encoding: str


def _measured(key: str, text: str, pages: Sequence[str]) -> Measure:
    return Measure(key, segments(text), [segments(page) for page in pages], encoding(text))


def measure(language: str) -> List[Measure]:
    """Every response of `language`, rendered with the sample values of each programme that
    serves the language (else the default one) and shaped for SMS; for each key, the programme
    whose rendering costs most (segments, then pages)."""
    import asyncio

    from rasa.shared.core.events import SlotSet
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot import calculator, faq
    from bot import programme as programmes
    from bot.i18n import Renderer, placeholders
    from bot.nlg import CatalogNLG

    nlg = CatalogNLG()
    kept: dict = {}

    def keep(found: Measure) -> None:
        known = kept.get(found.key)
        if known is None or (found.whole, len(found.pages)) > (known.whole, len(known.pages)):
            kept[found.key] = found

    serving = [p for p in programmes.load_all().values() if language in p.languages]
    for programme in serving or [programmes.default()]:
        variables = _sample_variables(programme)
        tracker = DialogueStateTracker.from_events(
            "sms-report", [SlotSet("language", language), SlotSet("country", programme.country)])
        for key, plural in _response_keys(language):
            text = Renderer(language).gettext(key, 2 if plural else None)
            facts = dict(variables)
            topic = key.partition("/")[2]
            if key.startswith("utter_faq/") and topic in faq.TOPICS:
                facts.update(faq.answer(topic, programme)[1])  # "documents", "cost"... differ by topic
            used = {}
            for placeholder in placeholders(text):
                name, _, spec = placeholder.partition(":")
                used[name] = facts.get(name, _SAMPLES.get(spec.split("=")[0], "Amina"))
            if key == "utter_calc_next_payments":
                used["rows"] = used["rows"][:calculator.NEXT_PAYMENTS]
            message = asyncio.run(nlg.generate(key, tracker, "sms", **used))
            keep(_measured(key, message["text"], message.get("sms_pages") or [message["text"]]))
        renderer = Renderer(language, programme.country, programme.currency, programme.timezone)
        for key in CHANNEL_REPLIES:
            text = prefer_gsm7(renderer.render(key))
            keep(_measured(key, text, [text]))
    return sorted(kept.values(), key=lambda m: m.key)


def costliest(measures: Sequence[Measure], count: int) -> List[Measure]:
    """The `count` responses that cost the most: most segments in all, then most pages."""
    return sorted(measures, key=lambda m: (-m.whole, -len(m.pages), m.key))[:count]


HEADER = ("language  responses  per message median/worst  whole reply median/worst  most pages"
          "  at budget  paged  UCS-2")


def report(worst: int = 0) -> str:
    """Segment counts per language over every response, as the SMS channel sends them.

    Columns: median and worst per message sent (each page), median and worst of the whole reply
    before paging, the most pages a reply takes, the share of responses with a message at the
    full budget of `MAX_SEGMENTS`, the share sent in several pages ("reply MORE"), the share
    sent in UCS-2. With `worst`, that many costliest responses of each language follow, with
    the segments of each of their pages.
    """
    import logging

    from bot.i18n import available_languages

    logging.getLogger("bot.i18n").setLevel(logging.CRITICAL)
    lines, details = [HEADER], []
    for language in available_languages():
        measures = measure(language)
        count = max(len(measures), 1)
        page_median, page_worst = summary([page for m in measures for page in m.pages])
        whole_median, whole_worst = summary([m.whole for m in measures])
        at_budget = sum(max(m.pages) >= MAX_SEGMENTS for m in measures) / count
        ucs2 = sum(m.encoding == "UCS-2" for m in measures) / count
        paged = sum(len(m.pages) > 1 for m in measures) / count
        most_pages = max((len(m.pages) for m in measures), default=0)
        lines.append(f"{language:<9} {len(measures):>9}  {page_median:>14g} / {page_worst:<8} "
                     f"{whole_median:>14g} / {whole_worst:<8} {most_pages:>11}  {at_budget:>9.0%}  {paged:>5.0%}"
                     f"  {ucs2:>5.0%}")
        if worst:
            details.append(f"\n{language}: the {worst} costliest responses (segments in all = per page)")
            details.extend(f"  {m.key:<40} {m.whole:>2} = {' + '.join(map(str, m.pages))}"
                           for m in costliest(measures, worst))
    return "\n".join(lines + details)


def main(argv: Sequence[str]) -> int:
    """`report [--worst N]`: prints the report; returns the exit status."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m channels.sms")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("report", help="segment counts per language over every response")
    command.add_argument("--worst", type=int, default=0, metavar="N",
                         help="also list the N costliest responses of each language")
    arguments = parser.parse_args(argv)
    print(report(arguments.worst))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))

"""Message catalogs and locale formatting: how a response key becomes text in a language.

Every user-facing sentence lives in `locales/<lang>/LC_MESSAGES/messages.po` under a key
(`utter_greet`, `btn.loans`). `render` looks the key up in the user's catalog (plural forms
through gettext), then fills its placeholders with Babel: `{amount:money}`,
`{n:number}`, `{rate:percent}`, `{due:date}`, `{at:datetime}`, `{hours:hours}`,
`{country:country}`, `{what:key}`, `{docs:keylist}`, `{items:list}`, `{rows:lines=row_key}`.
Numbers use the locale's own digits (Persian digits in Farsi and Pashto).

A catalog may also hold a shorter text of a key for SMS, `<key>.sms`: SMS costs by the
segment, and a reply in Arabic script fills a segment with 70 characters. Where the user's
language has one, SMS replies use it; every other channel gets the full text.
"""
from __future__ import annotations

import datetime as dt
import io
import logging
import re
import string
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton, format_time, get_day_names
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import Translations

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
FALLBACK_LANGUAGE = "en"
RTL_LANGUAGES = frozenset({"ar", "fa", "ps", "ur", "he", "ckb", "sd", "ug", "yi"})
SMS_VARIANT = "sms"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NATIVE_DIGITS = {"arab": "٠١٢٣٤٥٦٧٨٩", "arabext": "۰۱۲۳۴۵۶۷۸۹", "beng": "০১২৩৪৫৬৭৮৯", "deva": "०१२३४५६७८९"}


def available_languages() -> List[str]:
    """Language codes that have a catalog under `locales/`, sorted."""
    return sorted(p.parent.parent.name for p in LOCALES.glob("*/LC_MESSAGES/messages.po"))


def is_rtl(language: str) -> bool:
    """Whether `language` is written right to left."""
    return language.split("_")[0] in RTL_LANGUAGES


@lru_cache(maxsize=None)
def translations(language: str) -> Translations:
    """The compiled catalog of `language` (the .mo file, or the .po compiled in memory)."""
    folder = LOCALES / language / "LC_MESSAGES"
    po, mo = folder / "messages.po", folder / "messages.mo"
    if mo.exists() and po.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as handle:
            return Translations(handle, domain="messages")
    if not po.exists():
        raise LookupError(f"no catalog for language {language!r}")
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=language.replace("-", "_"))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain="messages")


def has_key(language: str, key: str) -> bool:
    """Whether the catalog of `language` translates `key`."""
    try:
        return key in translations(language)._catalog or (key, 0) in translations(language)._catalog
    except LookupError:
        return False


@lru_cache(maxsize=None)
def babel_locale(language: str, country: Optional[str] = None) -> Locale:
    """The Babel locale for a language in a country (`fa` in `AF` is `fa_AF`), else the language."""
    for candidate in ([f"{language}_{country}"] if country else []) + [language, FALLBACK_LANGUAGE]:
        try:
            return Locale.parse(candidate)
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse(FALLBACK_LANGUAGE)


def native_digits(text: str, locale: Locale) -> str:
    """Writes the ASCII digits of `text` in the locale's default numbering system."""
    digits = _NATIVE_DIGITS.get(getattr(locale, "default_numbering_system", "latn"))
    return text.translate(str.maketrans("0123456789", digits)) if digits else text


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"not a number: {value!r}") from None


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


class Renderer:
    """Renders catalog keys for one language, locale and currency."""

    def __init__(self, language: str, country: Optional[str] = None, currency: Optional[str] = None,
                 timezone: Optional[dt.tzinfo] = None, variant: Optional[str] = None) -> None:
        self.language = language if language in available_languages() else FALLBACK_LANGUAGE
        self.locale = babel_locale(self.language, country)
        self.currency = currency
        self.timezone = timezone
        self.variant = variant

    def gettext(self, key: str, count: Optional[int] = None) -> str:
        """The raw catalog text of `key` (plural form chosen by `count`), English if missing.

        With a `variant` ("sms"), the text of `<key>.<variant>` where this language has one: the
        message's own key and the keys it includes (`{rows:lines=row_key}`, `{what:key}`).
        """
        if self.variant and has_key(self.language, f"{key}.{self.variant}"):
            key = f"{key}.{self.variant}"
        for language in (self.language, FALLBACK_LANGUAGE):
            try:
                catalog = translations(language)
            except LookupError:
                continue
            text = catalog.ngettext(key, key, count) if count is not None else catalog.gettext(key)
            if text != key:
                return text
            logger.warning("catalog %s has no text for %s", language, key)
        return key

    def render(self, key: str, variables: Optional[Mapping[str, Any]] = None) -> str:
        """The text of `key` with its placeholders filled from `variables`."""
        variables = dict(variables or {})
        count = variables.get("count")
        text = self.gettext(key, int(count) if count is not None else None)
        try:
            return _Formatter(self).vformat(text, (), variables)
        except (KeyError, IndexError, ValueError) as error:
            logger.error("cannot fill %s in %s: %r", key, self.language, error)
            return _Formatter(self, lenient=True).vformat(text, (), variables)

    def localized(self, value: Any) -> str:
        """Picks this language's text from a `{lang: text}` mapping (English, then any)."""
        if isinstance(value, Mapping):
            for language in (self.language, FALLBACK_LANGUAGE):
                if value.get(language):
                    return str(value[language])
            return str(next(iter(value.values()), ""))
        return "" if value is None else str(value)

    def button_title(self, title: Any) -> str:
        """A button title: `lang_name@fr` (that language's own name), `country@TN`, a
        `{lang: text}` mapping, or a catalog key."""
        if isinstance(title, Mapping):
            return self.localized(title)
        title = str(title)
        if title.startswith("lang_name@"):
            return Renderer(title.split("@", 1)[1]).gettext("lang_name")
        if title.startswith("country@"):
            return self.country_name(title.split("@", 1)[1])
        return self.render(title)

    def country_name(self, code: str) -> str:
        """The country's name in this locale."""
        return self.locale.territories.get(code.upper(), code)

    def format_value(self, value: Any, spec: str) -> str:
        """Formats one placeholder value according to its format name."""
        kind, _, argument = spec.partition("=")
        if kind == "money":
            if not self.currency:
                raise ValueError("money placeholder without a programme currency")
            text = self.format_money(_decimal(value))
        elif kind == "number":
            text = format_decimal(_decimal(value), locale=self.locale, decimal_quantization=False, numbering_system="default")
        elif kind == "percent":
            text = format_percent(_decimal(value) / 100, locale=self.locale, decimal_quantization=False, numbering_system="default")
        elif kind == "date":
            text = format_date(_date(value), format="long", locale=self.locale)
        elif kind == "datetime":
            moment = _datetime(value)
            if self.timezone is not None and moment.tzinfo is not None:
                moment = moment.astimezone(self.timezone)
            day = format_skeleton("MMMMEEEEd", moment, locale=self.locale)
            time = format_time(moment, format="short", locale=self.locale)
            text = self.locale.datetime_formats["medium"].format(time, day)
        elif kind == "time":
            text = format_time(dt.time.fromisoformat(str(value)), format="short", locale=self.locale)
        elif kind == "hours":
            text = self.format_hours(value)
        elif kind == "country":
            return self.country_name(str(value))
        elif kind == "key":
            return self.render(str(value))
        elif kind == "keylist":
            return format_list([self.render(str(v)) for v in value], locale=self.locale)
        elif kind == "list":
            return format_list([self.localized(v) for v in value], locale=self.locale)
        elif kind == "lines":
            return "\n".join(self.render(argument, item) for item in value)
        elif kind == "":
            return self.localized(value)
        else:
            raise ValueError(f"unknown format {spec!r}")
        return native_digits(text, self.locale)

    def format_money(self, amount: Decimal) -> str:
        """An amount in the programme currency; whole amounts without decimals ("200 000 DT")."""
        if amount == amount.to_integral_value():
            pattern = re.sub(r"\.0+", "", self.locale.currency_formats["standard"].pattern)
            return format_currency(amount, self.currency, locale=self.locale, format=pattern,
                                   currency_digits=False, numbering_system="default")
        return format_currency(amount, self.currency, locale=self.locale, numbering_system="default")

    def format_hours(self, hours: Mapping[str, str]) -> str:
        """Opening hours such as `{mon: "08:00-16:00", ...}` as "Mon-Thu 08:00-16:00, Fri ...".

        Consecutive days with the same hours are grouped.
        """
        names = get_day_names("abbreviated", locale=self.locale)
        first = self.locale.first_week_day
        week = [(i + first) % 7 for i in range(7)]  # the locale's week, e.g. Saturday first in AF
        groups: List[List[Any]] = []
        for position, index in enumerate(week):
            span = hours.get(DAYS[index])
            if span and groups and groups[-1][2] == span and groups[-1][3] == position - 1:
                groups[-1][1], groups[-1][3] = index, position
            elif span:
                groups.append([index, index, span, position])
        parts = []
        for start_day, last_day, span, _ in groups:
            start, end = (dt.time.fromisoformat(t) for t in span.split("-"))
            days = names[start_day] if start_day == last_day else f"{names[start_day]}–{names[last_day]}"
            times = f"{format_time(start, 'short', locale=self.locale)}–{format_time(end, 'short', locale=self.locale)}"
            parts.append(f"{days} {native_digits(times, self.locale)}")
        # the plain "and" list: Babel's "unit" list repeats the last item of two in Arabic
        return format_list(parts, locale=self.locale)


class _Formatter(string.Formatter):
    def __init__(self, renderer: Renderer, lenient: bool = False) -> None:
        self.renderer = renderer
        self.lenient = lenient

    def get_value(self, key, args, kwargs):
        if self.lenient and key not in kwargs:
            return "…"
        return super().get_value(key, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> str:
        if self.lenient and value == "…":
            return value
        try:
            return self.renderer.format_value(value, format_spec)
        except (ValueError, TypeError, InvalidOperation, AttributeError):
            if self.lenient:
                return self.renderer.localized(value)
            raise


def placeholders(text: str) -> List[str]:
    """The placeholders of a catalog text, as written (`amount:money`), sorted."""
    return sorted(
        f"{name}:{spec}" if spec else name
        for _, name, spec, _ in string.Formatter().parse(text)
        if name is not None
    )

"""The repayment calculator of the conversation: from what the user said to a schedule.

The rate, method and fees come from the programme's loan product; the user gives the amount,
the duration and, when the product leaves it open, how often they pay.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from bot.loans import LoanTerms, Schedule, build_schedule
from bot.numbers import parse_amount
from bot.programme import Programme
from bot.text import normalize

UNKNOWN_PRODUCT = "unknown"
WEEKS_PER_MONTH = Decimal(52) / Decimal(12)
WORDS_FILE = Path(__file__).parent / "data" / "calculator_words.yml"

_LETTER_VARIANTS = str.maketrans({
    "\u06d0": "\u06cc", "\u06cd": "\u06cc", "\u06d2": "\u06cc", "\u06d3": "\u06cc",  # ې ۍ ے ۓ -> ی
    "\u06c1": "\u0647", "\u06c2": "\u0647", "\u06be": "\u0647", "\u06d5": "\u0647",  # ہ ۂ ھ ە -> ه
    "\u06c0": "\u0647", "\u0629": "\u0647",  # ۀ ة -> ه
    "\u0623": "\u0627", "\u0625": "\u0627", "\u0622": "\u0627", "\u0671": "\u0627",  # أ إ آ ٱ -> ا
    "\u200c": None, "\u200d": None, "'": None, "\u2019": None, "\u2018": None, "`": None,
})
_NOT_WORD = re.compile(r"[^\w]+")
_MENU_NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in text if not unicodedata.combining(c)).strip()


def _words(text: str) -> Tuple[str, ...]:
    """The words of `text`, folded so that spelling variants compare equal."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = normalize("".join(c for c in text if not unicodedata.combining(c))).translate(_LETTER_VARIANTS)
    return tuple(_NOT_WORD.sub(" ", text).split())


@lru_cache(maxsize=None)
def _dont_know_phrases(language: str) -> Tuple[Tuple[str, ...], ...]:
    with WORDS_FILE.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    phrases = list((data.get("common") or {}).get("dont_know") or [])
    phrases += list((data.get(language) or {}).get("dont_know") or [])
    return tuple(words for words in (_words(str(p)) for p in phrases) if words)


def means_dont_know(answer: str, language: str) -> bool:
    """Whether `answer` says "I don't know" in `language` (phrases in bot/data/calculator_words.yml)."""
    words = _words(answer or "")
    if not words:
        return False
    joined = "".join(words)
    for phrase in _dont_know_phrases(language):
        if joined == "".join(phrase):
            return True
        if any(words[i:i + len(phrase)] == phrase for i in range(len(words) - len(phrase) + 1)):
            return True
    return False


def product_number(answer: str, language: str) -> Optional[int]:
    """The number the user typed as their whole answer ("2", "٢", "۲", "two"), or None."""
    match = _MENU_NUMBER.match(normalize(answer or ""))
    if match:
        return int(match.group(1))
    if len(_words(answer or "")) > 2:
        return None
    value = parse_amount(answer or "", language)
    if value is None or value != value.to_integral_value() or not 0 < value < 100:
        return None
    return int(value)


def products(programme: Programme) -> List[Dict[str, Any]]:
    """The programme's loan products."""
    return list(programme.data["loans"]["products"])


def default_product(programme: Programme) -> Dict[str, Any]:
    """The product used when the user does not know which one: the first one."""
    return products(programme)[0]


def find_product(answer: str, programme: Programme) -> Optional[Dict[str, Any]]:
    """The product the user named (its id, or its name in any language), or None."""
    answer = _plain(answer or "")
    if not answer:
        return None
    if answer == UNKNOWN_PRODUCT:
        return default_product(programme)
    for product in products(programme):
        names = product["name"].values() if isinstance(product["name"], dict) else [product["name"]]
        plain = [_plain(n) for n in names] + [_plain(product["id"])]
        if answer in plain or any(len(answer) >= 4 and (answer in n or n in answer) for n in plain):
            return product
    return None


def choose_product(answer: str, programme: Programme, language: str) -> Optional[Dict[str, Any]]:
    """The product an answer to "which loan?" picks, or None.

    By id or name, by its number in the question's list (the products in order, then "I don't
    know"), or by "I don't know" in the user's language; not knowing picks the default product.
    """
    found = find_product(answer, programme)
    if found is not None:
        return found
    number = product_number(answer, language)
    choices = products(programme)
    if number is not None:
        if 1 <= number <= len(choices):
            return choices[number - 1]
        return default_product(programme) if number == len(choices) + 1 else None
    return default_product(programme) if means_dont_know(answer, language) else None


def months_of(count: int, unit: str) -> Decimal:
    """A duration in months."""
    if unit == "months":
        return Decimal(count)
    if unit == "weeks":
        return Decimal(count) / WEEKS_PER_MONTH
    return Decimal(count) / Decimal(30)


def repayments_for(count: int, unit: str, frequency: str) -> int:
    """How many payments a duration makes at `frequency` ("months" or "weeks")."""
    if frequency == "weeks":
        weeks = Decimal(count) if unit == "weeks" else months_of(count, unit) * WEEKS_PER_MONTH
        return max(1, int(weeks.to_integral_value()))
    return max(1, int(months_of(count, unit).to_integral_value()))


def amount_problem(amount: Decimal, product: Dict[str, Any]) -> Optional[Tuple[str, Dict[str, Any]]]:
    """The response that explains why `amount` does not fit `product`, or None."""
    low, high = Decimal(str(product["min_amount"])), Decimal(str(product["max_amount"]))
    if low <= amount <= high:
        return None
    return "utter_calc_amount_out_of_range", {"product": product["name"], "min": str(low), "max": str(high)}


def term_problem(count: int, unit: str, product: Dict[str, Any]) -> Optional[Tuple[str, Dict[str, Any]]]:
    """The response that explains why the duration does not fit `product`, or None."""
    months = months_of(count, unit)
    if product["min_term"] <= months <= product["max_term"]:
        return None
    return "utter_calc_term_out_of_range", {"product": product["name"], "min": product["min_term"],
                                            "max": product["max_term"]}


def terms_for(programme: Programme, product: Dict[str, Any], amount: Decimal, repayments: int,
              frequency: str, today: dt.date) -> LoanTerms:
    """The loan terms of a calculation, disbursed `today`."""
    return LoanTerms(
        principal=amount,
        annual_rate=Decimal(str(product["annual_rate"])),
        repayments=repayments,
        frequency=frequency,
        disbursed=today,
        interest_method=product.get("interest_method", "declining"),
        amortization=product.get("amortization", "equal-installments"),
        grace_principal=min(int(product.get("grace_principal", 0)), max(repayments - 1, 0)),
        currency=programme.currency,
        disbursement_fee_pct=Decimal(str(product.get("disbursement_fee_pct", 0))),
    )


def typical_installment(schedule: Schedule) -> Decimal:
    """The instalment a borrower pays most often (the last one may differ by rounding)."""
    totals = [i.total for i in schedule.installments]
    return max(set(totals), key=lambda t: (totals.count(t), t))


def result(schedule: Schedule, product: Dict[str, Any], frequency: str) -> Tuple[str, Dict[str, Any]]:
    """The response key and variables that present a schedule in one short message."""
    total = schedule.total_repayment + schedule.disbursement_fee
    return f"utter_calc_result_{frequency}", {
        "amount": str(schedule.principal),
        "product": product["name"],
        "count": len(schedule.installments),
        "installment": str(typical_installment(schedule)),
        "total": str(total),
        "cost": str(schedule.total_cost),
        "apr": str(schedule.apr_pct),
    }


# payments a text-only channel shows instead of the whole schedule (`utter_calc_next_payments`)
NEXT_PAYMENTS = 3


def rows(schedule: Schedule, limit: Optional[int] = None) -> List[Dict[str, Any]]:
    """Schedule rows as catalog variables (`schedule_row`, `schedule_table_row`)."""
    installments = schedule.installments[:limit] if limit else schedule.installments
    return [{"period": i.period, "due": i.due_date.isoformat(), "principal": str(i.principal),
             "interest": str(i.interest), "total": str(i.total)} for i in installments]

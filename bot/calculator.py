"""The repayment calculator of the conversation: from what the user said to a schedule.

The rate, method and fees come from the programme's loan product; the user gives the amount,
the duration and, when the product leaves it open, how often they pay.
"""
from __future__ import annotations

import datetime as dt
import unicodedata
from decimal import Decimal
from typing import Any, Dict, List, Optional, Tuple

from bot.loans import LoanTerms, Schedule, build_schedule
from bot.programme import Programme

UNKNOWN_PRODUCT = "unknown"
WEEKS_PER_MONTH = Decimal(52) / Decimal(12)


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in text if not unicodedata.combining(c)).strip()


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


def rows(schedule: Schedule, limit: Optional[int] = None) -> List[Dict[str, Any]]:
    """Schedule rows as catalog variables (`schedule_row`)."""
    installments = schedule.installments[:limit] if limit else schedule.installments
    return [{"period": i.period, "due": i.due_date.isoformat(), "total": str(i.total)} for i in installments]

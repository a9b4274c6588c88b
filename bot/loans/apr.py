"""Annual percentage rates of a loan from its cash flows.

``effective_rate`` is the rate X of the EU Consumer Credit Directive
(2008/48/EC, Annex I, as amended by 2011/90/EU): the rate at which the
drawdowns, discounted at (1 + X) ** -t, equal the discounted repayments, with t
in years counted as whole months (1/12 year), whole weeks (1/52 year) or days
(1/365 year). ``nominal_rate`` turns it into the nominal rate microfinance
transparency standards quote: the periodic internal rate of return times the
number of periods in a year.
"""

from __future__ import annotations

import calendar
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Iterable, Sequence

DAYS_IN_YEAR = Decimal(365)
# Rates above this (10^15 %) cannot be stated meaningfully, and no longer fit one decimal place.
MAX_RATE = Decimal("1e13")
_PRECISION = 50
_TOLERANCE = Decimal("1e-30")
_MAX_STEPS = 500
# ln(1 + X) is searched in [-2**14, 2**14]: far beyond any rate a loan can have.
_MAX_LOG = Decimal(2**14)


def _add_months(start: date, months: int) -> date:
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    length = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(start.day, length))


def year_fraction(start: date, end: date, frequency: str = "days") -> Decimal:
    """Years from ``start`` to ``end``: whole months or weeks of the frequency, then days over 365.

    Months are counted the way the schedule counts them, so a month-end loan
    paid out on 31 January is one month old on 28 February.
    """
    if frequency == "months":
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        while months > 0 and _add_months(start, months) > end:
            months -= 1
        days = (end - _add_months(start, months)).days
        return Decimal(months) / 12 + Decimal(days) / DAYS_IN_YEAR
    if frequency == "weeks":
        weeks, days = divmod((end - start).days, 7)
        return Decimal(weeks) / 52 + Decimal(days) / DAYS_IN_YEAR
    return Decimal((end - start).days) / DAYS_IN_YEAR


def _discounted(flows: list[tuple[Decimal, Decimal]], v: Decimal) -> tuple[Decimal, Decimal]:
    """Net discounted value of ``flows`` at v = ln(1 + X) and its derivative in v."""
    value = slope = Decimal(0)
    for t, amount in flows:
        discounted = amount * (-t * v).exp()
        value += discounted
        slope -= t * discounted
    return value, slope


def solve_rate(drawdowns: Iterable[tuple[Decimal, Decimal]], repayments: Iterable[tuple[Decimal, Decimal]]) -> Decimal:
    """The rate X with sum(drawdown * (1+X)**-t) == sum(repayment * (1+X)**-t); flows are (t, amount).

    Works on v = ln(1 + X), where the net discounted value of a loan (drawdowns at
    t = 0, repayments later) falls steadily: the root is bracketed first, then
    found by Newton steps that fall back to bisection when they leave the bracket.
    """
    with localcontext() as context:
        context.prec = _PRECISION
        flows = [(Decimal(t), Decimal(amount)) for t, amount in repayments]
        flows += [(Decimal(t), -Decimal(amount)) for t, amount in drawdowns]
        low, high = Decimal(-1), Decimal(1)
        while _discounted(flows, low)[0] < 0 and low > -_MAX_LOG:
            low *= 2
        while _discounted(flows, high)[0] > 0 and high < _MAX_LOG:
            high *= 2
        v = Decimal(0)
        for _ in range(_MAX_STEPS):
            value, slope = _discounted(flows, v)
            if value == 0:
                break
            if value > 0:
                low = v
            else:
                high = v
            guess = v - value / slope if slope else low
            if not low < guess < high:
                guess = (low + high) / 2
            if abs(guess - v) < _TOLERANCE or high - low < _TOLERANCE:
                v = guess
                break
            v = guess
        return v.exp() - 1


def effective_rate(
    disbursed: date, received: Decimal, repayments: Sequence[tuple[date, Decimal]], frequency: str
) -> Decimal:
    """EU-directive rate (a fraction, 0.2 for 20 %) of a loan paying ``received`` out on ``disbursed``."""
    flows = [(year_fraction(disbursed, due, frequency), amount) for due, amount in repayments if amount]
    return solve_rate([(Decimal(0), received)], flows)


def nominal_rate(effective: Decimal, periods_per_year: Decimal) -> Decimal:
    """Periodic rate equivalent to ``effective`` times the number of periods in a year."""
    with localcontext() as context:
        context.prec = _PRECISION
        periods = Decimal(periods_per_year)
        return periods * (((1 + effective).ln() / periods).exp() - 1)


def as_percent(rate: Decimal) -> Decimal:
    """A rate given as a fraction, as a percentage with one decimal (HALF_EVEN)."""
    return (rate * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)

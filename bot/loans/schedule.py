"""Repayment schedules of cumulative loans, computed the way Apache Fineract does.

The rules follow Fineract's cumulative schedule generator
(``AbstractCumulativeLoanScheduleGenerator``, ``LoanApplicationTerms``,
``DefaultScheduledDateGenerator``, ``DefaultPaymentPeriodsInOneYearCalculator``):
amounts are rounded to the currency's places after every step with HALF_EVEN,
the last instalment takes whatever rounding left over, and the schedule stops
as soon as the balance reaches zero. Only ``decimal.Decimal`` is used for money.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from typing import Optional, Union

import babel.numbers

from bot.loans import apr

FREQUENCIES = ("months", "weeks", "days")
INTEREST_METHODS = ("declining", "flat")
AMORTIZATIONS = ("equal-installments", "equal-principal")
INTEREST_PERIODS = ("same-as-repayment", "daily")
DAYS_IN_YEAR = ("actual", "360", "364", "365")
DAYS_IN_MONTH = ("actual", "30")

MAX_REPAYMENTS = 1200
MAX_ANNUAL_RATE = Decimal(1000)
# Fineract's PaymentPeriodsInOneYearCalculator; it also counts an "actual" year as 365 days.
PERIODS_IN_YEAR = {"months": 12, "weeks": 52, "days": 365}


class LoanTermsError(ValueError):
    """Loan terms that cannot give a schedule; the message is one English sentence."""


@dataclass(frozen=True)
class LoanTerms:
    """Everything needed to draw up a schedule; amounts are Decimals in the loan currency.

    ``annual_rate`` is a percentage (12 means 12 % a year). Grace values count
    repayment periods from the first one. A disbursement fee is fixed
    (``disbursement_fee``) or a percentage of the principal (``disbursement_fee_pct``);
    an instalment fee is fixed (``installment_fee``) and/or a percentage of that
    instalment's interest (``installment_fee_pct_of_interest``).
    Invalid values raise :class:`LoanTermsError` when the terms are created.
    """

    principal: Decimal
    annual_rate: Decimal
    repayments: int
    frequency: str = "months"
    every: int = 1
    disbursed: date = field(default_factory=date.today)
    first_due: Optional[date] = None
    interest_method: str = "declining"
    amortization: str = "equal-installments"
    interest_period: str = "same-as-repayment"
    days_in_year: Union[str, int] = "actual"
    days_in_month: Union[str, int] = "actual"
    grace_principal: int = 0
    grace_interest_payment: int = 0
    grace_interest_charged: int = 0
    installment_multiple: Optional[int] = None
    currency: str = "EUR"
    disbursement_fee: Decimal = Decimal(0)
    disbursement_fee_pct: Decimal = Decimal(0)
    installment_fee: Decimal = Decimal(0)
    installment_fee_pct_of_interest: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        _validate(self)


@dataclass(frozen=True)
class Installment:
    """One repayment: what is due on ``due_date`` and the principal still owed after it."""

    period: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal
    total: Decimal
    balance: Decimal


@dataclass(frozen=True)
class Schedule:
    """A full repayment plan with the cost disclosure a borrower should see.

    ``total_fees`` includes the disbursement fee, which is paid when the loan is
    paid out and so appears in no instalment. ``total_cost`` is interest plus fees.
    ``apr_pct`` is the EU Consumer Credit Directive annual percentage rate and
    ``nominal_apr_pct`` the nominal rate of microfinance transparency standards,
    both percentages with one decimal.
    """

    installments: tuple[Installment, ...]
    currency: str
    disbursed: date
    principal: Decimal
    disbursement_fee: Decimal
    total_principal: Decimal
    total_interest: Decimal
    total_fees: Decimal
    total_cost: Decimal
    total_repayment: Decimal
    apr_pct: Decimal
    nominal_apr_pct: Decimal

    def to_json_dict(self) -> dict:
        """Plain JSON types: dates in ISO form, money as strings with the currency's places."""
        return {
            "currency": self.currency,
            "disbursed": self.disbursed.isoformat(),
            "principal": str(self.principal),
            "installments": [
                {
                    "period": row.period,
                    "due_date": row.due_date.isoformat(),
                    "principal": str(row.principal),
                    "interest": str(row.interest),
                    "fee": str(row.fee),
                    "total": str(row.total),
                    "balance": str(row.balance),
                }
                for row in self.installments
            ],
            "disbursement_fee": str(self.disbursement_fee),
            "total_principal": str(self.total_principal),
            "total_interest": str(self.total_interest),
            "total_fees": str(self.total_fees),
            "total_cost": str(self.total_cost),
            "total_repayment": str(self.total_repayment),
            "apr_pct": str(self.apr_pct),
            "nominal_apr_pct": str(self.nominal_apr_pct),
        }


# --- validation -----------------------------------------------------------------------


def _decimal(terms: LoanTerms, name: str, label: str) -> Decimal:
    value = getattr(terms, name)
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str, float)):
        raise LoanTermsError(f"The {label} must be a number.")
    try:
        # str() keeps a float's shortest form, so 0.1 stays 0.1 and never becomes binary noise.
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise LoanTermsError(f"The {label} must be a number.") from None
    if not number.is_finite():
        raise LoanTermsError(f"The {label} must be a finite number.")
    object.__setattr__(terms, name, number)
    return number


def _integer(terms: LoanTerms, name: str, label: str, minimum: int) -> int:
    value = getattr(terms, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise LoanTermsError(f"The {label} must be a whole number.")
    if value < minimum:
        raise LoanTermsError(f"The {label} must be at least {minimum}.")
    return value


def _choice(terms: LoanTerms, name: str, label: str, choices: tuple[str, ...]) -> str:
    value = str(getattr(terms, name)).strip().lower()
    if value not in choices:
        raise LoanTermsError(f"The {label} must be one of {', '.join(choices)}, not {getattr(terms, name)!r}.")
    object.__setattr__(terms, name, value)
    return value


def _validate(terms: LoanTerms) -> None:
    principal = _decimal(terms, "principal", "principal")
    if principal <= 0:
        raise LoanTermsError("The principal must be a positive amount.")
    rate = _decimal(terms, "annual_rate", "annual interest rate")
    if rate < 0:
        raise LoanTermsError("The annual interest rate cannot be negative.")
    if rate > MAX_ANNUAL_RATE:
        raise LoanTermsError(f"The annual interest rate cannot be above {MAX_ANNUAL_RATE} %.")
    repayments = _integer(terms, "repayments", "number of repayments", 1)
    if repayments > MAX_REPAYMENTS:
        raise LoanTermsError(f"The number of repayments cannot be above {MAX_REPAYMENTS}.")
    _integer(terms, "every", "repayment interval", 1)
    _choice(terms, "frequency", "repayment frequency", FREQUENCIES)
    _choice(terms, "interest_method", "interest method", INTEREST_METHODS)
    _choice(terms, "amortization", "amortization", AMORTIZATIONS)
    _choice(terms, "interest_period", "interest calculation period", INTEREST_PERIODS)
    _choice(terms, "days_in_year", "days in year", DAYS_IN_YEAR)
    _choice(terms, "days_in_month", "days in month", DAYS_IN_MONTH)
    for name, label in (
        ("grace_principal", "grace on principal"),
        ("grace_interest_payment", "grace on interest payment"),
        ("grace_interest_charged", "grace on interest charged"),
    ):
        grace = _integer(terms, name, label, 0)
        if grace >= repayments:
            raise LoanTermsError(
                f"The {label} ({grace} periods) must be shorter than the loan ({repayments} repayments)."
            )
    if terms.installment_multiple is not None:
        _integer(terms, "installment_multiple", "instalment multiple", 1)
    if not isinstance(terms.currency, str) or not babel.numbers.is_currency(terms.currency.strip().upper()):
        raise LoanTermsError(f"Unknown currency code {terms.currency!r}.")
    object.__setattr__(terms, "currency", terms.currency.strip().upper())
    if _round(principal, _places(terms.currency)) <= 0:
        raise LoanTermsError(f"The principal is less than the smallest amount of {terms.currency}.")
    if not isinstance(terms.disbursed, date):
        raise LoanTermsError("The disbursement date must be a date.")
    if terms.first_due is not None:
        if not isinstance(terms.first_due, date):
            raise LoanTermsError("The first due date must be a date.")
        if terms.first_due <= terms.disbursed:
            raise LoanTermsError("The first due date must come after the disbursement date.")
    for name, label in (
        ("disbursement_fee", "disbursement fee"),
        ("disbursement_fee_pct", "disbursement fee percentage"),
        ("installment_fee", "instalment fee"),
        ("installment_fee_pct_of_interest", "instalment fee percentage"),
    ):
        if _decimal(terms, name, label) < 0:
            raise LoanTermsError(f"The {label} cannot be negative.")
    if terms.disbursement_fee and terms.disbursement_fee_pct:
        raise LoanTermsError("Give the disbursement fee either as an amount or as a percentage, not both.")
    if _disbursement_fee(terms) >= principal:
        raise LoanTermsError("The disbursement fee must be smaller than the principal.")
    try:
        _due_dates(terms)
    except (OverflowError, ValueError):
        raise LoanTermsError("The loan would end after the last date the calendar can hold.") from None


# --- dates ----------------------------------------------------------------------------


def _plus_months(day: date, months: int, anchor_day: int) -> date:
    """Java's ``plusMonths`` followed by Fineract's month-end adjustment to the seed day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    length = calendar.monthrange(year, month + 1)[1]
    result = date(year, month + 1, min(day.day, length))
    if anchor_day > 28 and result.day >= 28:
        result = result.replace(day=min(length, anchor_day))
    return result


def _next_due(day: date, terms: LoanTerms, anchor_day: int, periods: int = 1) -> date:
    if terms.frequency == "months":
        return _plus_months(day, terms.every * periods, anchor_day)
    unit = 7 if terms.frequency == "weeks" else 1
    return day + timedelta(days=unit * terms.every * periods)


def _due_dates(terms: LoanTerms) -> list[date]:
    seed = terms.first_due or terms.disbursed
    due = terms.first_due or _next_due(terms.disbursed, terms, seed.day)
    dates = [due]
    for _ in range(terms.repayments - 1):
        due = _next_due(due, terms, seed.day)
        dates.append(due)
    return dates


def _ideal_disbursement(terms: LoanTerms, first_due: date) -> date:
    """One repayment period before the first due date (Fineract's idealDisbursementDate)."""
    return _next_due(first_due, terms, first_due.day, periods=-1)


def _months_between(start: date, end: date, anchor_day: int) -> Decimal:
    """Fineract's calculatePeriodsBetweenDates for months: whole months plus a fraction of the next."""
    whole = (end.year - start.year) * 12 + end.month - start.month
    if whole > 0 and end.day < start.day:
        whole -= 1
    month_start = _plus_months(start, whole, anchor_day)
    month_end = _plus_months(start, whole + 1, anchor_day)
    return whole + Decimal((end - month_start).days) / Decimal((month_end - month_start).days)


# --- money and rates ------------------------------------------------------------------


def _disbursement_fee(terms: LoanTerms) -> Decimal:
    fee = terms.disbursement_fee or terms.principal * terms.disbursement_fee_pct / 100
    return _round(fee, _places(terms.currency))


def _places(currency: str) -> int:
    return babel.numbers.get_currency_precision(currency)


def _round(amount: Decimal, places: int) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def _round_to_multiple(amount: Decimal, multiple: int, places: int) -> Decimal:
    """Fineract's Money.roundToMultiplesOf: nearest multiple, ties to even."""
    return _round((amount / multiple).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * multiple, places)


def _days_in_year(terms: LoanTerms) -> int:
    return 365 if terms.days_in_year == "actual" else int(terms.days_in_year)


def _periods_in_year(terms: LoanTerms) -> int:
    """Fineract's calculatePeriodsInOneYear: days for daily interest or daily repayments."""
    if terms.interest_period == "daily" or terms.frequency == "days":
        return _days_in_year(terms)
    return PERIODS_IN_YEAR[terms.frequency]


def _period_rate(terms: LoanTerms, start: date, end: date, anchor_day: int) -> Decimal:
    """Interest rate (a fraction) for one repayment period from ``start`` to ``end``."""
    per_period = terms.annual_rate / _periods_in_year(terms) / 100
    if terms.interest_period == "same-as-repayment":
        return per_period * terms.every
    if terms.frequency == "months" and terms.days_in_month == "30":
        return per_period * _months_between(start, end, anchor_day) * 30
    return per_period * (end - start).days


def _pmt_rate(terms: LoanTerms) -> Decimal:
    """The periodic rate Fineract uses for the equal instalment (30-day months for daily interest)."""
    per_period = terms.annual_rate / _periods_in_year(terms) / 100
    if terms.interest_period == "same-as-repayment":
        return per_period * terms.every
    days = {"months": 30, "weeks": 7, "days": 1}[terms.frequency]
    return per_period * days * terms.every


def _pmt(rate: Decimal, periods: int, balance: Decimal) -> Decimal:
    if rate == 0:
        return balance / periods
    return balance * rate / (1 - (1 + rate) ** -periods)


# --- the generator --------------------------------------------------------------------


@dataclass
class _Plan:
    """Fixed quantities of one schedule, worked out before the period loop."""

    terms: LoanTerms
    places: int
    principal: Decimal
    dates: list[date]
    anchor_day: int
    principal_grace: set[int]
    interest_payment_grace: set[int]
    interest_free: set[int]
    equal_installment: Optional[Decimal] = None
    equal_principal: Optional[Decimal] = None
    flat_interest_total: Decimal = Decimal(0)
    flat_interest_per_period: Decimal = Decimal(0)


def _plan(terms: LoanTerms) -> _Plan:
    places = _places(terms.currency)
    dates = _due_dates(terms)
    plan = _Plan(
        terms=terms,
        places=places,
        principal=_round(terms.principal, places),
        dates=dates,
        anchor_day=(terms.first_due or terms.disbursed).day,
        principal_grace=set(range(1, terms.grace_principal + 1)),
        interest_payment_grace=set(range(1, terms.grace_interest_payment + 1)),
        interest_free=set(range(1, terms.grace_interest_charged + 1)),
    )
    paying_principal = terms.repayments - terms.grace_principal
    if terms.interest_method == "flat":
        plan.equal_principal = _round(plan.principal / paying_principal, places)
        _plan_flat_interest(plan)
    elif terms.amortization == "equal-principal":
        plan.equal_principal = _round(plan.principal / paying_principal, places)
    else:
        installment = _pmt(_pmt_rate(terms), paying_principal, plan.principal)
        if terms.installment_multiple:
            plan.equal_installment = _round_to_multiple(installment, terms.installment_multiple, places)
        else:
            plan.equal_installment = _round(installment, places)
        if plan.equal_installment <= 0:
            raise _multiple_too_large(terms, installment)
    return plan


def _multiple_too_large(terms: LoanTerms, installment: Decimal) -> LoanTermsError:
    return LoanTermsError(
        f"The instalment multiple {terms.installment_multiple} is too large for instalments of about "
        f"{_round(installment, _places(terms.currency))} {terms.currency}."
    )


def _plan_flat_interest(plan: _Plan) -> None:
    """Total flat interest (LoanApplicationTerms.calculateTotalInterestCharged) and its share per period."""
    terms, places = plan.terms, plan.places
    if terms.interest_period == "daily":
        term_length = Decimal((plan.dates[-1] - terms.disbursed).days)
    else:
        term_length = Decimal(terms.repayments * terms.every)
    rate_for_term = terms.annual_rate / _periods_in_year(terms) / 100 * term_length
    without_grace = _round(plan.principal * rate_for_term, places)
    per_period_without_grace = _round(without_grace / terms.repayments, places)
    plan.flat_interest_total = max(without_grace - per_period_without_grace * terms.grace_interest_charged, Decimal(0))
    if terms.amortization == "equal-principal":
        plan.flat_interest_per_period = per_period_without_grace
    else:
        # Grace periods of both kinds pay no interest; the others share it out evenly.
        bearing = terms.repayments - len(plan.interest_payment_grace | plan.interest_free)
        plan.flat_interest_per_period = _round(plan.flat_interest_total / bearing, places)


def _flat_interest(plan: _Plan, period: int, carried: Decimal) -> tuple[Decimal, Decimal]:
    """Interest due in ``period`` of a flat loan and the interest still carried by payment grace."""
    share = plan.flat_interest_per_period
    if plan.terms.amortization == "equal-principal":
        if period in plan.interest_payment_grace:
            return Decimal(0), carried + share
        if period in plan.interest_free:
            return Decimal(0), carried
        return carried + share, Decimal(0)
    if period in plan.interest_payment_grace or period in plan.interest_free:
        return Decimal(0), carried
    return share, carried


def _declining_interest(
    plan: _Plan, period: int, balance: Decimal, start: date, end: date, carried: Decimal
) -> tuple[Decimal, Decimal, Decimal]:
    """Interest due, interest the instalment must cover, and interest carried by payment grace.

    Interest accrued during a grace on interest payment is carried to the first
    instalment after the grace; it is due then but does not reduce that
    instalment's principal (CumulativeDecliningBalanceInterestLoanScheduleGenerator).
    """
    if period in plan.interest_free:
        return Decimal(0), Decimal(0), carried
    accrued = _round(balance * _period_rate(plan.terms, start, end, plan.anchor_day), plan.places)
    if period in plan.interest_payment_grace:
        return Decimal(0), accrued, carried + accrued
    if accrued > 0:
        return carried + accrued, accrued, Decimal(0)
    return Decimal(0), Decimal(0), carried


def _scheduled_principal(plan: _Plan, period: int, interest: Decimal) -> Decimal:
    """Principal of a period before the last-instalment adjustment."""
    terms = plan.terms
    if period in plan.principal_grace:
        return Decimal(0)
    if plan.equal_installment is not None:
        return plan.equal_installment - interest
    principal = plan.equal_principal
    if terms.installment_multiple:
        # The principal absorbs the rounding so that principal + interest is a whole multiple.
        rounded = _round_to_multiple(principal + interest, terms.installment_multiple, plan.places)
        if rounded <= 0:
            raise _multiple_too_large(terms, principal + interest)
        principal = rounded - interest
    return principal


def _installment_fee(terms: LoanTerms, interest: Decimal, places: int) -> Decimal:
    return _round(terms.installment_fee + interest * terms.installment_fee_pct_of_interest / 100, places)


def _rows(plan: _Plan) -> list[tuple[int, date, Decimal, Decimal, Decimal]]:
    """Period, due date, principal, interest and balance of every instalment, before fees."""
    terms = plan.terms
    rows = []
    balance = plan.principal
    interest_paid = Decimal(0)
    carried = Decimal(0)
    ideal_start = _ideal_disbursement(terms, plan.dates[0])
    start = terms.disbursed
    for period, due in enumerate(plan.dates, start=1):
        if terms.interest_method == "flat":
            interest, carried = _flat_interest(plan, period, carried)
            principal = _scheduled_principal(plan, period, interest)
        else:
            interest, covered, carried = _declining_interest(
                plan, period, balance, max(start, ideal_start), due, carried
            )
            principal = _scheduled_principal(plan, period, covered)
        # An instalment smaller than its interest repays no principal; the interest is still due.
        principal = balance if period == terms.repayments else min(max(principal, Decimal(0)), balance)
        balance -= principal
        if terms.interest_method == "flat":
            remaining = plan.flat_interest_total - interest_paid
            interest = remaining if balance == 0 else min(interest, remaining)
        interest_paid += interest
        rows.append((period, due, principal, interest, balance))
        start = due
        if balance == 0:
            break
    if carried and terms.interest_method == "declining":
        period, due, principal, interest, balance = rows[-1]
        rows[-1] = (period, due, principal, interest + carried, balance)
    return rows


def _installments(plan: _Plan) -> list[Installment]:
    places = plan.places
    installments = []
    for period, due, principal, interest, balance in _rows(plan):
        fee = _installment_fee(plan.terms, interest, places)
        # Rounding again gives zeros (Decimal(0)) the currency's places too.
        installments.append(Installment(
            period, due, _round(principal, places), _round(interest, places), fee,
            _round(principal + interest + fee, places), _round(balance, places),
        ))
    return installments


def build_schedule(terms: LoanTerms) -> Schedule:
    """Draw up the repayment schedule and cost disclosure for ``terms``.

    Raises :class:`LoanTermsError` when the terms cannot give a schedule.
    """
    with localcontext() as context:
        context.prec = 40
        plan = _plan(terms)
        installments = _installments(plan)
        disbursement_fee = _disbursement_fee(terms)
        effective = apr.effective_rate(
            terms.disbursed,
            plan.principal - disbursement_fee,
            [(row.due_date, row.total) for row in installments],
            terms.frequency,
        )
        if effective > apr.MAX_RATE:
            raise LoanTermsError("The cost of this loan is too high to state as an annual percentage rate.")
        per_year = Decimal(PERIODS_IN_YEAR[terms.frequency]) / terms.every

        def total(column: str) -> Decimal:
            return _round(sum(getattr(row, column) for row in installments), plan.places)

        total_fees = disbursement_fee + total("fee")
        return Schedule(
            installments=tuple(installments),
            currency=terms.currency,
            disbursed=terms.disbursed,
            principal=plan.principal,
            disbursement_fee=disbursement_fee,
            total_principal=total("principal"),
            total_interest=total("interest"),
            total_fees=total_fees,
            total_cost=total("interest") + total_fees,
            total_repayment=total("total"),
            apr_pct=apr.as_percent(effective),
            nominal_apr_pct=apr.as_percent(apr.nominal_rate(effective, per_year)),
        )

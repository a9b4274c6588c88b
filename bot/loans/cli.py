"""Command line for repayment schedules: ``python -m bot.loans schedule ...``.

Bad input exits with status 2 and one sentence on standard error.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import NoReturn, Optional, Sequence

from bot.loans.schedule import (
    AMORTIZATIONS,
    DAYS_IN_MONTH,
    DAYS_IN_YEAR,
    FREQUENCIES,
    INTEREST_METHODS,
    INTEREST_PERIODS,
    LoanTerms,
    LoanTermsError,
    Schedule,
    build_schedule,
)

USAGE_ERROR = 2


class _OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are a single line, without the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    return value


def _count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2022-11-01") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m bot.loans``."""
    parser = _OneLineParser(prog="python -m bot.loans", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="schedule")
    schedule = commands.add_parser("schedule", help="print a repayment schedule and its APR")
    schedule.add_argument("--principal", type=_amount, required=True)
    schedule.add_argument("--annual-rate", type=_amount, required=True, help="percent a year, e.g. 12")
    schedule.add_argument("--repayments", type=_count, required=True)
    schedule.add_argument("--every", type=_count, default=1)
    schedule.add_argument("--frequency", choices=FREQUENCIES, default="months")
    schedule.add_argument("--interest-method", choices=INTEREST_METHODS, default="declining")
    schedule.add_argument("--amortization", choices=AMORTIZATIONS, default="equal-installments")
    schedule.add_argument("--interest-period", choices=INTEREST_PERIODS, default="same-as-repayment")
    schedule.add_argument("--days-in-year", choices=DAYS_IN_YEAR, default="actual")
    schedule.add_argument("--days-in-month", choices=DAYS_IN_MONTH, default="actual")
    schedule.add_argument("--grace-principal", type=_count, default=0)
    schedule.add_argument("--grace-interest-payment", type=_count, default=0)
    schedule.add_argument("--grace-interest-charged", type=_count, default=0)
    schedule.add_argument("--installment-multiple", type=_count, default=None)
    schedule.add_argument("--currency", default="EUR")
    schedule.add_argument("--disbursed", type=_day, required=True)
    schedule.add_argument("--first-due", type=_day, default=None)
    fee = schedule.add_mutually_exclusive_group()
    fee.add_argument("--disbursement-fee", type=_amount, default=Decimal(0))
    fee.add_argument("--disbursement-fee-pct", type=_amount, default=Decimal(0))
    schedule.add_argument("--installment-fee", type=_amount, default=Decimal(0), help="fixed fee per instalment")
    schedule.add_argument("--installment-fee-pct-of-interest", type=_amount, default=Decimal(0))
    schedule.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def terms_from_args(args: argparse.Namespace) -> LoanTerms:
    """The loan terms the parsed options describe (raises LoanTermsError when they are invalid)."""
    return LoanTerms(
        principal=args.principal,
        annual_rate=args.annual_rate,
        repayments=args.repayments,
        frequency=args.frequency,
        every=args.every,
        disbursed=args.disbursed,
        first_due=args.first_due,
        interest_method=args.interest_method,
        amortization=args.amortization,
        interest_period=args.interest_period,
        days_in_year=args.days_in_year,
        days_in_month=args.days_in_month,
        grace_principal=args.grace_principal,
        grace_interest_payment=args.grace_interest_payment,
        grace_interest_charged=args.grace_interest_charged,
        installment_multiple=args.installment_multiple,
        currency=args.currency,
        disbursement_fee=args.disbursement_fee,
        disbursement_fee_pct=args.disbursement_fee_pct,
        installment_fee=args.installment_fee,
        installment_fee_pct_of_interest=args.installment_fee_pct_of_interest,
    )


def format_table(schedule: Schedule) -> str:
    """The schedule as an aligned plain-text table followed by the cost disclosure."""
    header = ("#", "Due date", "Principal", "Interest", "Fee", "Total", "Balance")
    rows = [
        (str(r.period), r.due_date.isoformat(), *(str(amount) for amount in (r.principal, r.interest, r.fee)),
         str(r.total), str(r.balance))
        for r in schedule.installments
    ]
    installment_fees = schedule.total_fees - schedule.disbursement_fee
    rows.append(
        ("", "Total", str(schedule.total_principal), str(schedule.total_interest), str(installment_fees),
         str(schedule.total_repayment), "")
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        # The date column reads left to right; amounts line up on the right.
        padded = (cell.ljust(w) if i == 1 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths)))
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [line(header), rule, *(line(row) for row in rows[:-1]), rule, line(rows[-1]), ""]
    currency = schedule.currency
    lines += [
        f"Principal:          {schedule.principal} {currency}",
        f"Disbursement fee:   {schedule.disbursement_fee} {currency}",
        f"Total interest:     {schedule.total_interest} {currency}",
        f"Total fees:         {schedule.total_fees} {currency}",
        f"Total cost:         {schedule.total_cost} {currency}",
        f"APR (EU):           {schedule.apr_pct} %",
        f"Nominal APR:        {schedule.nominal_apr_pct} %",
    ]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        schedule = build_schedule(terms_from_args(args))
    except LoanTermsError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    if args.json:
        print(json.dumps(schedule.to_json_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_table(schedule))
    return 0

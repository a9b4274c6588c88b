"""Repayment schedules checked to the cent against numbers worked out by hand.

Every expectation says where it comes from. "By hand" means the arithmetic is
written out in the comment, rounding each amount to the cent (HALF_EVEN) the way
Fineract's Money does after every step, with the last instalment taking the
rounding residue.
"""

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from bot.loans import LoanTerms, LoanTermsError, build_schedule
from bot.loans.apr import as_percent, effective_rate, nominal_rate, solve_rate, year_fraction

D = Decimal


def rows(schedule):
    """(due date, principal, interest, total, balance) of each instalment, as strings."""
    return [
        (r.due_date.isoformat(), str(r.principal), str(r.interest), str(r.total), str(r.balance))
        for r in schedule.installments
    ]


def terms(**overrides):
    base = dict(principal=D(1000), annual_rate=D(12), repayments=3, disbursed=date(2023, 1, 1))
    base.update(overrides)
    return LoanTerms(**base)


SCHEDULES = {
    # Flat: interest 5000 x 12 % x 18/12 = 900.00, 50.00 a month; principal 5000/18 = 277.78,
    # the last one 5000 - 17 x 277.78 = 277.74.
    "flat": (
        dict(principal=D(5000), repayments=18, interest_method="flat", disbursed=date(2022, 11, 1)),
        [("2022-12-01", "277.78", "50.00", "327.78", "4722.22")]
        + [None] * 16
        + [("2024-05-01", "277.74", "50.00", "327.74", "0.00")],
    ),
    # The example of the brief: flat with instalments in multiples of 1, the principal absorbs
    # the rounding: round(277.78 + 50) - 50 = 278; the last is 5000 - 17 x 278 = 274.
    "flat in multiples of 1": (
        dict(principal=D(5000), repayments=18, interest_method="flat", installment_multiple=1,
             disbursed=date(2022, 11, 1)),
        [("2022-12-01", "278.00", "50.00", "328.00", "4722.00")]
        + [None] * 16
        + [("2024-05-01", "274.00", "50.00", "324.00", "0.00")],
    ),
    # The example in Fineract's LoanApplicationTerms comment: 5000 flat at 3 % over 12 months,
    # principal 416.67 and interest 12.50 a month; round(429.17) = 429 so principal 416.50;
    # last principal 5000 - 11 x 416.50 = 418.50.
    "flat multiples, Fineract comment": (
        dict(principal=D(5000), annual_rate=D(3), repayments=12, interest_method="flat", installment_multiple=1),
        [("2023-02-01", "416.50", "12.50", "429.00", "4583.50")]
        + [None] * 10
        + [("2024-01-01", "418.50", "12.50", "431.00", "0.00")],
    ),
    # Declining, equal instalments: rate 1 % a month, PMT = 1000 x 0.01 / (1 - 1.01^-3) = 340.0221 -> 340.02.
    # Interest 10.00, 669.98 x 1 % = 6.6998 -> 6.70, 336.66 x 1 % = 3.3666 -> 3.37.
    "declining equal instalments": (
        dict(),
        [
            ("2023-02-01", "330.02", "10.00", "340.02", "669.98"),
            ("2023-03-01", "333.32", "6.70", "340.02", "336.66"),
            ("2023-04-01", "336.66", "3.37", "340.03", "0.00"),
        ],
    ),
    # Equal principal: 1200 / 3 = 400; interest 1 % of 1200, 800 and 400.
    "equal principal": (
        dict(principal=D(1200), amortization="equal-principal"),
        [
            ("2023-02-01", "400.00", "12.00", "412.00", "800.00"),
            ("2023-03-01", "400.00", "8.00", "408.00", "400.00"),
            ("2023-04-01", "400.00", "4.00", "404.00", "0.00"),
        ],
    ),
    # Grace on principal, 1 period: interest only first, then PMT over the 3 other periods:
    # 1200 x 0.01 / (1 - 1.01^-3) = 408.0265 -> 408.03. 803.97 x 1 % = 8.0397 -> 8.04; 403.98 x 1 % -> 4.04.
    "grace on principal": (
        dict(principal=D(1200), repayments=4, grace_principal=1),
        [
            ("2023-02-01", "0.00", "12.00", "12.00", "1200.00"),
            ("2023-03-01", "396.03", "12.00", "408.03", "803.97"),
            ("2023-04-01", "399.99", "8.04", "408.03", "403.98"),
            ("2023-05-01", "403.98", "4.04", "408.02", "0.00"),
        ],
    ),
    # Grace on principal and on interest payment, 2 periods: 12.00 accrues twice and is paid with the
    # first instalment after the grace, on top of that period's 12.00. PMT over 2 periods:
    # 1200 x 0.01 x 1.0201 / 0.0201 = 609.0149 -> 609.01; principal 609.01 - 12.00 = 597.01;
    # then 602.99 x 1 % = 6.0299 -> 6.03.
    "grace on interest payment": (
        dict(principal=D(1200), repayments=4, grace_principal=2, grace_interest_payment=2),
        [
            ("2023-02-01", "0.00", "0.00", "0.00", "1200.00"),
            ("2023-03-01", "0.00", "0.00", "0.00", "1200.00"),
            ("2023-04-01", "597.01", "36.00", "633.01", "602.99"),
            ("2023-05-01", "602.99", "6.03", "609.02", "0.00"),
        ],
    ),
    # Flat with grace on interest payment: 1200 x 1 % x 4 = 48.00 shared by the 3 paying periods.
    "flat grace on interest payment": (
        dict(principal=D(1200), repayments=4, interest_method="flat", grace_interest_payment=1),
        [
            ("2023-02-01", "300.00", "0.00", "300.00", "900.00"),
            ("2023-03-01", "300.00", "16.00", "316.00", "600.00"),
            ("2023-04-01", "300.00", "16.00", "316.00", "300.00"),
            ("2023-05-01", "300.00", "16.00", "316.00", "0.00"),
        ],
    ),
    # Grace on interest charged (interest-free first period), declining: PMT = 408.03 as above is paid
    # all as principal first; 791.97 x 1 % = 7.9197 -> 7.92; 391.86 x 1 % = 3.9186 -> 3.92.
    "grace on interest charged": (
        dict(principal=D(1200), grace_interest_charged=1),
        [
            ("2023-02-01", "408.03", "0.00", "408.03", "791.97"),
            ("2023-03-01", "400.11", "7.92", "408.03", "391.86"),
            ("2023-04-01", "391.86", "3.92", "395.78", "0.00"),
        ],
    ),
    # Flat with an interest-free first period: 48.00 less one period's 12.00, shared by 3 periods.
    "flat grace on interest charged": (
        dict(principal=D(1200), repayments=4, interest_method="flat", grace_interest_charged=1),
        [
            ("2023-02-01", "300.00", "0.00", "300.00", "900.00"),
            ("2023-03-01", "300.00", "12.00", "312.00", "600.00"),
            ("2023-04-01", "300.00", "12.00", "312.00", "300.00"),
            ("2023-05-01", "300.00", "12.00", "312.00", "0.00"),
        ],
    ),
    # Weekly: 52 % a year is 1 % a week (52 weeks a year), so the amounts are the monthly 1 % ones.
    "weekly": (
        dict(annual_rate=D(52), frequency="weeks", disbursed=date(2024, 1, 1)),
        [
            ("2024-01-08", "330.02", "10.00", "340.02", "669.98"),
            ("2024-01-15", "333.32", "6.70", "340.02", "336.66"),
            ("2024-01-22", "336.66", "3.37", "340.03", "0.00"),
        ],
    ),
    # Every 2 weeks at 26 %: 26/52 x 2 = 1 % a period.
    "fortnightly": (
        dict(annual_rate=D(26), frequency="weeks", every=2, disbursed=date(2024, 1, 1)),
        [
            ("2024-01-15", "330.02", "10.00", "340.02", "669.98"),
            ("2024-01-29", "333.32", "6.70", "340.02", "336.66"),
            ("2024-02-12", "336.66", "3.37", "340.03", "0.00"),
        ],
    ),
    # Daily interest on actual days, 36.5 % / 365 = 0.1 % a day. The instalment uses 30-day months
    # (Fineract's pmtForInstallment): 1000 x 0.03 / (1 - 1.03^-3) = 353.5304 -> 353.53.
    # 31 days: 31.00; 28 days: 677.47 x 0.028 = 18.969 -> 18.97; 31 days: 342.91 x 0.031 = 10.630 -> 10.63.
    "daily interest, actual days": (
        dict(annual_rate=D("36.5"), interest_period="daily", days_in_year=365),
        [
            ("2023-02-01", "322.53", "31.00", "353.53", "677.47"),
            ("2023-03-01", "334.56", "18.97", "353.53", "342.91"),
            ("2023-04-01", "342.91", "10.63", "353.54", "0.00"),
        ],
    ),
    # The same loan with 30-day months: 30.00; 676.47 x 0.03 = 20.294 -> 20.29; 343.23 x 0.03 = 10.297 -> 10.30.
    "daily interest, 30-day months": (
        dict(annual_rate=D("36.5"), interest_period="daily", days_in_year=365, days_in_month=30),
        [
            ("2023-02-01", "323.53", "30.00", "353.53", "676.47"),
            ("2023-03-01", "333.24", "20.29", "353.53", "343.23"),
            ("2023-04-01", "343.23", "10.30", "353.53", "0.00"),
        ],
    ),
    # Daily interest on a 360-day year: 36 % / 360 = 0.1 % a day, so the same numbers as above.
    "daily interest, 360-day year": (
        dict(annual_rate=D(36), interest_period="daily", days_in_year=360),
        [
            ("2023-02-01", "322.53", "31.00", "353.53", "677.47"),
            ("2023-03-01", "334.56", "18.97", "353.53", "342.91"),
            ("2023-04-01", "342.91", "10.63", "353.54", "0.00"),
        ],
    ),
    # Declining in multiples of 10: PMT 340.0221 -> 340; interest as before; 336.70 x 1 % = 3.367 -> 3.37.
    "declining in multiples of 10": (
        dict(installment_multiple=10),
        [
            ("2023-02-01", "330.00", "10.00", "340.00", "670.00"),
            ("2023-03-01", "333.30", "6.70", "340.00", "336.70"),
            ("2023-04-01", "336.70", "3.37", "340.07", "0.00"),
        ],
    ),
    # Month-end anchor: a loan paid out on 31 January keeps the end of the month (DefaultScheduledDateGenerator
    # adjustDate). Equal principal with daily interest shows the real day counts: 28 days x 0.1 % x 1200 = 33.60,
    # 31 days x 0.1 % x 800 = 24.80, 30 days x 0.1 % x 400 = 12.00.
    "month-end anchor": (
        dict(principal=D(1200), annual_rate=D("36.5"), amortization="equal-principal", interest_period="daily",
             disbursed=date(2023, 1, 31)),
        [
            ("2023-02-28", "400.00", "33.60", "433.60", "800.00"),
            ("2023-03-31", "400.00", "24.80", "424.80", "400.00"),
            ("2023-04-30", "400.00", "12.00", "412.00", "0.00"),
        ],
    ),
    # Zero interest: 1000 / 3 = 333.33, the last 333.34.
    "zero interest": (
        dict(annual_rate=D(0)),
        [
            ("2023-02-01", "333.33", "0.00", "333.33", "666.67"),
            ("2023-03-01", "333.33", "0.00", "333.33", "333.34"),
            ("2023-04-01", "333.34", "0.00", "333.34", "0.00"),
        ],
    ),
    # Currency without decimals (AFN has 0 places in CLDR): 10000 flat 12 % over 3 months, 100 a month
    # interest, principal 10000 / 3 = 3333.33 -> 3333, the last 3334.
    "whole-unit currency": (
        dict(principal=D(10000), interest_method="flat", currency="AFN"),
        [
            ("2023-02-01", "3333", "100", "3433", "6667"),
            ("2023-03-01", "3333", "100", "3433", "3334"),
            ("2023-04-01", "3334", "100", "3434", "0"),
        ],
    ),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedule_matches_hand_calculation(name):
    overrides, expected = SCHEDULES[name]
    actual = rows(build_schedule(terms(**overrides)))
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        if want is not None:
            assert got == want


def test_declining_matches_plain_annuity_formula():
    # Twelve months at 18 % on 10000, computed here with the textbook annuity formula and a plain loop.
    principal, rate, n = D(10000), D("0.015"), 12
    cent = D("0.01")
    emi = (principal * rate / (1 - (1 + rate) ** -n)).quantize(cent, ROUND_HALF_EVEN)
    balance, expected = principal, []
    for k in range(1, n + 1):
        interest = (balance * rate).quantize(cent, ROUND_HALF_EVEN)
        paid = balance if k == n else emi - interest
        balance -= paid
        expected.append((paid, interest, balance))
    schedule = build_schedule(terms(principal=principal, annual_rate=D(18), repayments=n))
    assert emi == D("916.80")
    assert [(r.principal, r.interest, r.balance) for r in schedule.installments] == expected


def test_month_end_dates_in_a_leap_year():
    schedule = build_schedule(terms(repayments=4, disbursed=date(2024, 1, 31)))
    assert [r.due_date for r in schedule.installments] == [
        date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30), date(2024, 5, 31)
    ]


def test_first_due_date_sets_the_anchor():
    schedule = build_schedule(terms(disbursed=date(2023, 2, 15), first_due=date(2023, 3, 31)))
    assert [r.due_date for r in schedule.installments] == [date(2023, 3, 31), date(2023, 4, 30), date(2023, 5, 31)]


def test_first_due_date_on_the_28th_anchors_on_the_28th():
    # DefaultScheduledDateGenerator.adjustDate only moves dates when the seed day is after the 28th.
    schedule = build_schedule(terms(disbursed=date(2023, 1, 31), first_due=date(2023, 2, 28)))
    assert [r.due_date for r in schedule.installments] == [date(2023, 2, 28), date(2023, 3, 28), date(2023, 4, 28)]


def test_daily_interest_with_a_long_first_period_starts_one_period_before_the_first_due_date():
    # Fineract's idealDisbursementDate: interest of period 1 runs from 1 Feb (one month before 1 Mar).
    schedule = build_schedule(
        terms(principal=D(1200), annual_rate=D("36.5"), amortization="equal-principal", interest_period="daily",
              first_due=date(2023, 3, 1))
    )
    assert schedule.installments[0].interest == D("33.60")  # 28 days x 0.1 % x 1200


def test_disbursement_fee_reduces_what_the_borrower_receives():
    # 0 % loan of 1000 in 10 monthly instalments of 100 with a 50 fee is an interest-free loan with an
    # upfront fee: the borrower gets 950. The APR solves 950 = sum 100 / (1+X)^(k/12), computed here by
    # plain bisection on floats: X = 11.93 %.
    schedule = build_schedule(terms(annual_rate=D(0), repayments=10, disbursement_fee=D(50)))
    assert {r.total for r in schedule.installments} == {D("100.00")}
    assert (schedule.total_interest, schedule.total_fees, schedule.total_cost) == (D("0.00"), D("50.00"), D("50.00"))
    assert schedule.disbursement_fee == D("50.00")
    low, high = 0.0, 1.0
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if sum(100 / (1 + mid) ** (k / 12) for k in range(1, 11)) > 950 else (low, mid)
    assert schedule.apr_pct == D(str(round(low * 100, 1))) == D("11.9")


def test_disbursement_fee_as_a_percentage_of_principal():
    schedule = build_schedule(terms(principal=D(5000), disbursement_fee_pct=D(2)))
    assert schedule.disbursement_fee == D("100.00")
    assert schedule.total_fees == D("100.00")


def test_installment_fee_as_a_percentage_of_interest_and_fixed():
    # 10 % of the interest of each equal-principal instalment (12.00, 8.00, 4.00) plus 5.00 each.
    schedule = build_schedule(
        terms(principal=D(1200), amortization="equal-principal", installment_fee_pct_of_interest=D(10),
              installment_fee=D(5))
    )
    assert [(r.fee, r.total) for r in schedule.installments] == [
        (D("6.20"), D("418.20")), (D("5.80"), D("413.80")), (D("5.40"), D("409.40"))
    ]
    assert schedule.total_fees == D("17.40")
    assert schedule.total_cost == D("41.40")


def test_brief_example_disclosure():
    # The brief's example: flat 12 % on 5000 over 18 months in multiples of 1 -> APR 23.9 %, nominal 21.7 %.
    schedule = build_schedule(
        terms(principal=D(5000), repayments=18, interest_method="flat", installment_multiple=1,
              disbursed=date(2022, 11, 1))
    )
    assert (schedule.total_interest, schedule.apr_pct, schedule.nominal_apr_pct) == (D("900.00"), D("23.9"), D("21.7"))
    # Cross-check the nominal rate: the monthly IRR by float bisection, times 12.
    low, high = 0.0, 1.0
    for _ in range(100):
        mid = (low + high) / 2
        value = sum(float(r.total) / (1 + mid) ** r.period for r in schedule.installments)
        low, high = (mid, high) if value > 5000 else (low, mid)
    assert round(low * 1200, 1) == 21.7


def test_zero_rate_without_fee_has_zero_apr():
    schedule = build_schedule(terms(annual_rate=D(0)))
    assert (schedule.apr_pct, schedule.nominal_apr_pct) == (D("0.0"), D("0.0"))


def test_to_json_dict_uses_strings_with_currency_places():
    data = build_schedule(terms()).to_json_dict()
    assert data["installments"][0] == {
        "period": 1, "due_date": "2023-02-01", "principal": "330.02", "interest": "10.00", "fee": "0.00",
        "total": "340.02", "balance": "669.98",
    }
    assert (data["total_principal"], data["total_interest"], data["total_fees"]) == ("1000.00", "20.07", "0.00")


# --- EU Consumer Credit Directive worked examples ------------------------------------------


@pytest.mark.parametrize(
    "received, repayments, expected",
    [
        # 1000 borrowed, 1200 repaid after one year: 1000 = 1200 / (1+X) -> X = 20 %.
        (1000, [(1, 1200)], "20.0"),
        # ... after 18 months: 1000 = 1200 / (1+X)^1.5 -> X = 1.2^(2/3) - 1 = 12.92 %.
        (1000, [(D(18) / 12, 1200)], "12.9"),
        # Two payments of 600 after one and two years: 1000 y^2 - 600 y - 600 = 0, y = 1 + X
        # -> y = (600 + sqrt(600^2 + 4 x 1000 x 600)) / 2000 = 1.130662 -> 13.1 %.
        (1000, [(1, 600), (2, 600)], "13.1"),
        # Directive 98/7/EC, Annex III example 4: 272 after 3 and 6 months, 544 after 12 months -> 13.19 %.
        (1000, [(D(3) / 12, 272), (D(6) / 12, 272), (1, 544)], "13.2"),
    ],
)
def test_eu_directive_examples(received, repayments, expected):
    rate = solve_rate([(D(0), D(received))], [(D(t), D(a)) for t, a in repayments])
    assert as_percent(rate) == D(expected)


def test_eu_example_with_dates_counts_whole_months():
    rate = effective_rate(date(2023, 1, 1), D(1000), [(date(2024, 7, 1), D(1200))], "months")
    assert as_percent(rate) == D("12.9")


def test_quadratic_example_exactly():
    rate = solve_rate([(D(0), D(1000))], [(D(1), D(600)), (D(2), D(600))])
    assert abs(rate - (D(600) + D(2760000).sqrt()) / 2000 + 1) < D("1e-20")


@pytest.mark.parametrize(
    "start, end, frequency, expected",
    [
        (date(2023, 1, 1), date(2023, 2, 1), "months", D(1) / 12),
        (date(2023, 1, 31), date(2023, 2, 28), "months", D(1) / 12),  # month-end counts as a whole month
        (date(2023, 1, 1), date(2023, 2, 15), "months", D(1) / 12 + D(14) / 365),
        (date(2023, 1, 1), date(2023, 1, 15), "weeks", D(2) / 52),
        (date(2023, 1, 1), date(2023, 1, 17), "weeks", D(2) / 52 + D(2) / 365),
        (date(2023, 1, 1), date(2023, 1, 31), "days", D(30) / 365),
    ],
)
def test_year_fraction(start, end, frequency, expected):
    assert year_fraction(start, end, frequency) == expected


def test_nominal_rate_of_a_monthly_effective_rate():
    # 1 % a month compounds to 1.01^12 - 1 = 12.68 %; its nominal rate is 12 x 1 % = 12 %.
    effective = D("1.01") ** 12 - 1
    assert abs(nominal_rate(effective, D(12)) - D("0.12")) < D("1e-30")


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(principal=D(0)), "principal must be a positive amount"),
        (dict(principal=D(-5)), "principal must be a positive amount"),
        (dict(principal=D("0.001")), "less than the smallest amount"),
        (dict(principal="abc"), "principal must be a number"),
        (dict(principal=D("NaN")), "finite"),
        (dict(annual_rate=D(-1)), "cannot be negative"),
        (dict(repayments=0), "number of repayments must be at least 1"),
        (dict(repayments=2.5), "whole number"),
        (dict(every=0), "repayment interval must be at least 1"),
        (dict(currency="XYZ"), "Unknown currency code 'XYZ'"),
        (dict(frequency="years"), "repayment frequency must be one of"),
        (dict(interest_method="compound"), "interest method must be one of"),
        (dict(days_in_year=366), "days in year must be one of"),
        (dict(grace_principal=3), "grace on principal (3 periods) must be shorter than the loan (3 repayments)"),
        (dict(grace_interest_payment=5), "grace on interest payment"),
        (dict(grace_interest_charged=-1), "at least 0"),
        (dict(first_due=date(2023, 1, 1)), "first due date must come after"),
        (dict(disbursement_fee=D(1000)), "disbursement fee must be smaller than the principal"),
        (dict(disbursement_fee=D(10), disbursement_fee_pct=D(1)), "not both"),
        (dict(installment_fee=D(-1)), "instalment fee cannot be negative"),
        (dict(installment_multiple=0), "instalment multiple must be at least 1"),
        (dict(disbursed=date(9999, 12, 1)), "calendar"),
    ],
)
def test_bad_terms_raise_one_clear_sentence(overrides, message):
    with pytest.raises(LoanTermsError) as caught:
        build_schedule(terms(**overrides))
    text = str(caught.value)
    assert message in text
    assert "\n" not in text and text.endswith(".") and text[0].isupper()


def test_an_apr_too_high_to_state_is_refused():
    # A 99 % fee on a one-day loan: (1/0.01)^365 - 1, about 10^730.
    with pytest.raises(LoanTermsError, match="too high to state"):
        build_schedule(terms(repayments=1, frequency="days", disbursement_fee_pct=D(99)))


def test_a_multiple_too_large_for_the_loan_is_refused():
    # The instalment of 8.88 rounds to 0 in multiples of 1000.
    with pytest.raises(LoanTermsError, match="multiple 1000 is too large for instalments of about 8.88 EUR"):
        build_schedule(terms(principal=D(100), repayments=12, installment_multiple=1000))
    with pytest.raises(LoanTermsError, match="multiple 1000 is too large"):
        build_schedule(terms(principal=D(100), repayments=12, installment_multiple=1000, interest_method="flat"))

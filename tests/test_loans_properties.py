"""Invariants every schedule keeps, whatever the (valid) terms."""

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.loans import LoanTerms, LoanTermsError, build_schedule

CURRENCIES = {"EUR": 2, "TND": 3, "AFN": 0, "PKR": 2}


@st.composite
def loan_terms(draw):
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    places = CURRENCIES[currency]
    repayments = draw(st.integers(1, 36))
    principal = Decimal(draw(st.integers(1, 10**7))).scaleb(-places) + Decimal(100)
    grace = st.integers(0, repayments - 1)
    fee_kind = draw(st.sampled_from(["none", "fixed", "pct"]))
    return LoanTerms(
        principal=principal,
        annual_rate=Decimal(draw(st.integers(0, 12000))) / 100,
        repayments=repayments,
        frequency=draw(st.sampled_from(["months", "weeks", "days"])),
        every=draw(st.integers(1, 3)),
        disbursed=date(2020, 1, 1) + timedelta(days=draw(st.integers(0, 2000))),
        interest_method=draw(st.sampled_from(["declining", "flat"])),
        amortization=draw(st.sampled_from(["equal-installments", "equal-principal"])),
        interest_period=draw(st.sampled_from(["same-as-repayment", "daily"])),
        days_in_year=draw(st.sampled_from(["actual", "360", "364", "365"])),
        days_in_month=draw(st.sampled_from(["actual", "30"])),
        grace_principal=draw(grace),
        grace_interest_payment=draw(grace),
        grace_interest_charged=draw(grace),
        installment_multiple=draw(st.sampled_from([None, None, 1, 5, 10, 100])),
        currency=currency,
        disbursement_fee=principal / 50 if fee_kind == "fixed" else Decimal(0),
        disbursement_fee_pct=Decimal(3) if fee_kind == "pct" else Decimal(0),
        installment_fee=draw(st.sampled_from([Decimal(0), Decimal(1)])),
        installment_fee_pct_of_interest=draw(st.sampled_from([Decimal(0), Decimal(10)])),
    )


def schedule_of(terms):
    try:
        return build_schedule(terms)
    except LoanTermsError:
        assume(False)


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(loan_terms())
def test_principal_column_sums_exactly_to_the_principal(terms):
    schedule = schedule_of(terms)
    assert sum(row.principal for row in schedule.installments) == schedule.principal == schedule.total_principal


@PROPERTY_SETTINGS
@given(loan_terms())
def test_no_amount_is_negative(terms):
    for row in schedule_of(terms).installments:
        assert min(row.principal, row.interest, row.fee, row.total, row.balance) >= 0


@PROPERTY_SETTINGS
@given(loan_terms())
def test_final_balance_is_exactly_zero_and_balances_follow_the_principal(terms):
    schedule = schedule_of(terms)
    assert schedule.installments[-1].balance == 0
    balance = schedule.principal
    for row in schedule.installments:
        balance -= row.principal
        assert row.balance == balance


@PROPERTY_SETTINGS
@given(loan_terms())
def test_totals_equal_the_sums_of_the_columns(terms):
    schedule = schedule_of(terms)
    rows = schedule.installments
    for row in rows:
        assert row.total == row.principal + row.interest + row.fee
    assert schedule.total_interest == sum(row.interest for row in rows)
    assert schedule.total_fees == schedule.disbursement_fee + sum(row.fee for row in rows)
    assert schedule.total_cost == schedule.total_interest + schedule.total_fees
    assert schedule.total_repayment == sum(row.total for row in rows)


@PROPERTY_SETTINGS
@given(loan_terms())
def test_due_dates_strictly_increase_after_disbursement(terms):
    schedule = schedule_of(terms)
    dates = [terms.disbursed] + [row.due_date for row in schedule.installments]
    assert all(earlier < later for earlier, later in zip(dates, dates[1:]))
    assert [row.period for row in schedule.installments] == list(range(1, len(dates)))


@PROPERTY_SETTINGS
@given(loan_terms())
def test_amounts_have_the_currency_places_and_the_apr_is_not_negative(terms):
    schedule = schedule_of(terms)
    places = CURRENCIES[terms.currency]
    for row in schedule.installments:
        for amount in (row.principal, row.interest, row.fee, row.total, row.balance):
            assert amount.as_tuple().exponent == -places
    assert schedule.apr_pct >= 0 and schedule.nominal_apr_pct >= 0

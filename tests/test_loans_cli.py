"""``python -m bot.loans schedule`` run as a subprocess, as people and scripts call it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BRIEF_EXAMPLE = [
    "--principal", "5000", "--annual-rate", "12", "--repayments", "18", "--interest-method", "flat",
    "--installment-multiple", "1", "--disbursed", "2022-11-01",
]


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "bot.loans", "schedule", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )


def test_json_output_has_the_documented_shape():
    result = run(*BRIEF_EXAMPLE, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"installments", "total_principal", "total_interest", "total_fees", "apr_pct", "nominal_apr_pct"} <= set(data)
    assert data["installments"][0] == {
        "period": 1, "due_date": "2022-12-01", "principal": "278.00", "interest": "50.00", "fee": "0.00",
        "total": "328.00", "balance": "4722.00",
    }
    assert len(data["installments"]) == 18
    assert data["installments"][-1]["balance"] == "0.00"
    assert (data["total_principal"], data["total_interest"], data["total_fees"]) == ("5000.00", "900.00", "0.00")
    assert (data["apr_pct"], data["nominal_apr_pct"]) == ("23.9", "21.7")


def test_json_with_every_option():
    result = run(
        "--principal", "1200", "--annual-rate", "36.5", "--repayments", "3", "--every", "1",
        "--frequency", "months", "--interest-method", "declining", "--amortization", "equal-principal",
        "--interest-period", "daily", "--days-in-year", "365", "--days-in-month", "actual",
        "--grace-principal", "0", "--grace-interest-payment", "0", "--grace-interest-charged", "0",
        "--currency", "eur", "--disbursed", "2023-01-31", "--first-due", "2023-02-28",
        "--disbursement-fee-pct", "2", "--installment-fee-pct-of-interest", "10", "--installment-fee", "1",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    # A first due date on the 28th anchors later dates on the 28th (Fineract adjusts only seeds after the 28th).
    # 0.1 % a day: 28 days on 1200, 28 days on 800, 31 days on 400. Fees: 2 % of 1200 up front, and
    # 1 + 10 % of each interest.
    assert [row["due_date"] for row in data["installments"]] == ["2023-02-28", "2023-03-28", "2023-04-28"]
    assert [row["interest"] for row in data["installments"]] == ["33.60", "22.40", "12.40"]
    assert [row["fee"] for row in data["installments"]] == ["4.36", "3.24", "2.24"]
    assert (data["disbursement_fee"], data["total_fees"]) == ("24.00", "33.84")


def test_table_output_is_readable():
    result = run(*BRIEF_EXAMPLE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["#", "Due", "date", "Principal", "Interest", "Fee", "Total", "Balance"]
    assert lines[2].split() == ["1", "2022-12-01", "278.00", "50.00", "0.00", "328.00", "4722.00"]
    assert any(line.split()[:2] == ["18", "2024-05-01"] for line in lines)
    assert "APR (EU):           23.9 %" in result.stdout
    assert "Nominal APR:        21.7 %" in result.stdout
    assert "Total interest:     900.00 EUR" in result.stdout


BAD_INPUT = {
    "zero principal": (["--principal", "0"], "principal must be a positive amount"),
    "negative principal": (["--principal", "-5"], "principal must be a positive amount"),
    "principal not a number": (["--principal", "lots"], "'lots' is not a number"),
    "principal NaN": (["--principal", "NaN"], "'NaN' is not a number"),
    "zero repayments": (["--repayments", "0"], "number of repayments must be at least 1"),
    "repayments not whole": (["--repayments", "2.5"], "not a whole number"),
    "negative rate": (["--annual-rate", "-1"], "cannot be negative"),
    "unknown currency": (["--currency", "XYZ"], "Unknown currency code 'XYZ'"),
    "grace longer than the loan": (["--grace-principal", "18"], "must be shorter than the loan"),
    "bad date": (["--disbursed", "2022-13-01"], "is not a date like 2022-11-01"),
    "first due before disbursement": (["--first-due", "2022-10-01"], "first due date must come after"),
    "unknown frequency": (["--frequency", "fortnights"], "invalid choice"),
    "two disbursement fees": (["--disbursement-fee", "5", "--disbursement-fee-pct", "1"], "not allowed with"),
    "fee as large as the loan": (["--disbursement-fee", "5000"], "must be smaller than the principal"),
    "every zero": (["--every", "0"], "repayment interval must be at least 1"),
    "unknown option": (["--colour", "red"], "unrecognized arguments"),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_exits_2_with_one_line(case):
    extra, message = BAD_INPUT[case]
    result = run(*BRIEF_EXAMPLE, *extra)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert message in result.stderr


def test_missing_required_options_exit_2_with_one_line():
    result = run("--principal", "5000")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "--annual-rate" in result.stderr and "--disbursed" in result.stderr

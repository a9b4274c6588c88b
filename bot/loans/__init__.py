"""Loan repayment schedules and their cost disclosure (APR)."""

from bot.loans.schedule import Installment, LoanTerms, LoanTermsError, Schedule, build_schedule

__all__ = ["Installment", "LoanTerms", "LoanTermsError", "Schedule", "build_schedule"]

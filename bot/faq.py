"""Which programme facts each FAQ answer needs.

`answer(topic, programme)` returns the response key and its variables; the catalog decides
the words. Topics whose answer is the same everywhere need no country.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, Optional, Tuple

from bot.programme import Programme

TOPICS = (
    "loan_eligibility", "loan_apply", "loan_documents", "loan_interest", "loan_interest_free",
    "loan_guarantee", "loan_late_payment", "loan_amounts", "grant_eligibility", "grant_apply",
    "grant_amount", "grant_vs_loan", "business_plan", "savings_group", "registration_steps",
    "registration_documents", "registration_cost", "registration_tax", "admin_id_documents",
    "admin_bank_account", "admin_office_hours", "admin_training", "admin_accounting",
)
COUNTRY_FREE = frozenset({"grant_vs_loan", "savings_group", "admin_accounting"})


def needs_country(topic: str) -> bool:
    """Whether the answer to `topic` depends on the programme (and so on the user's country)."""
    return topic not in COUNTRY_FREE


def _interest_free(programme: Programme) -> Optional[Dict[str, Any]]:
    return next((p for p in programme.data["loans"]["products"] if p["annual_rate"] == 0), None)


def answer(topic: str, programme: Programme) -> Tuple[str, Dict[str, Any]]:
    """The response key and variables that answer `topic` for `programme`."""
    if topic not in TOPICS:
        raise KeyError(f"unknown FAQ topic {topic!r}")
    data = programme.data
    office = programme.main_office
    loans, grants, registration, admin = data["loans"], data["grants"], data["registration"], data["admin"]
    products = loans["products"]
    key = f"utter_faq/{topic}"
    facts: Dict[str, Any] = {
        "loan_eligibility": lambda: {"min_age": data["eligibility"]["min_age"],
                                     "return_months": data["eligibility"]["return_months"]},
        "loan_apply": lambda: {"office": office["name"], "phone": office["phone"],
                               "decision_days": loans["decision_days"]},
        "loan_documents": lambda: {"documents": [f"doc.{d}" for d in loans["documents"]]},
        "loan_interest": lambda: {"products": [{"name": p["name"], "rate": p["annual_rate"],
                                                "fee": p.get("disbursement_fee_pct", 0)} for p in products]},
        "loan_guarantee": lambda: {"guarantee": f"guarantee.{loans['guarantee']}"},
        "loan_late_payment": lambda: {"late_days": loans["late_days"], "late_fee": loans["late_fee_pct"]},
        "loan_amounts": lambda: {"min": min(p["min_amount"] for p in products),
                                 "max": max(p["max_amount"] for p in products),
                                 "min_term": min(p["min_term"] for p in products),
                                 "max_term": max(p["max_term"] for p in products)},
        "grant_eligibility": lambda: {"return_months": data["eligibility"]["return_months"]},
        "grant_apply": lambda: {"office": office["name"], "phone": office["phone"], "weeks": grants["weeks"]},
        "grant_amount": lambda: {"min": grants["min_amount"], "max": grants["max_amount"],
                                 "form": f"grant_form.{grants['form']}"},
        "business_plan": lambda: {"days": data["training"]["days"]},
        "registration_steps": lambda: {"authority": registration["authority"]},
        "registration_documents": lambda: {"documents": [f"doc.{d}" for d in registration["documents"]]},
        "registration_cost": lambda: {"cost": registration["cost"], "days": registration["days"],
                                      "authority": registration["authority"]},
        "registration_tax": lambda: {"tax_office": registration["tax_office"]},
        "admin_id_documents": lambda: {"civil_office": admin["civil_office"], "cost": admin["id_cost"]},
        "admin_bank_account": lambda: {"deposit": admin["bank_deposit"]},
        "admin_office_hours": lambda: {"office": office["name"], "address": office["address"],
                                       "hours": office["hours"], "phone": office["phone"]},
        "admin_training": lambda: {"days": data["training"]["days"], "office": office["name"]},
    }
    if topic == "loan_interest_free":
        product = _interest_free(programme)
        if product is None:
            return f"{key}_none", {}
        return key, {"name": product["name"], "fee": product.get("disbursement_fee_pct", 0)}
    if topic == "loan_late_payment" and not Decimal(str(loans["late_fee_pct"])):
        return f"{key}_no_fee", {}  # "a late fee of 0%" would only confuse
    return key, facts[topic]() if topic in facts else {}

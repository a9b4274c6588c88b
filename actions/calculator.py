"""The repayment calculator form: asks only what is missing, then presents the schedule."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.context import entity, language_of, programme_of, user_text
from actions.faq import country_choices
from bot import calculator, profiles
from bot import programme as programmes
from bot.loans import LoanTermsError, build_schedule
from bot.numbers import find_duration, parse_amount, parse_duration
from bot.phone import country_of

FORM_SLOTS = ("loan_country", "loan_product", "loan_amount", "loan_term", "loan_frequency")
FREQUENCIES = ("months", "weeks")


def _programme(tracker: Tracker) -> Optional[programmes.Programme]:
    found = programme_of(tracker)
    if found is None:
        country = tracker.get_slot("loan_country") or country_of(tracker.sender_id)
        found = programmes.for_country(country) if country else None
    return found


def _product(tracker: Tracker, programme: Optional[programmes.Programme]) -> Optional[Dict[str, Any]]:
    value = tracker.get_slot("loan_product")
    return calculator.find_product(str(value), programme) if value and programme else None


def _answers_product_question(tracker: Tracker) -> bool:
    """Whether the latest message is a number picking a product, not an amount or a duration."""
    return (tracker.get_slot("requested_slot") == "loan_product"
            and calculator.product_number(user_text(tracker), language_of(tracker)) is not None)


def _answers_term_question(tracker: Tracker) -> bool:
    """Whether the latest message reads as the duration asked for ("10 years"), so that a number
    the model tagged in it as an amount is part of the duration."""
    return (tracker.get_slot("requested_slot") == "loan_term"
            and parse_duration(user_text(tracker), language_of(tracker)) is not None)


def _before_this_message(tracker: Tracker, slot: str) -> Any:
    """The slot's value before the latest user message, ignoring what was extracted from it."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_user = True
        elif seen_user and event.get("event") == "slot" and event.get("name") == slot:
            return event.get("value")
    return None


def _term(value: Any, language: str):
    return parse_duration(str(value), language) if value else None


def _bare_count_term(value: Any, product: Optional[dict], tracker: Tracker) -> Optional[tuple[int, str]]:
    """A number alone ("18", "١٨") answering the duration question, counted in the product's
    payment period when the product has only one: 18 monthly payments are 18 months."""
    if tracker.get_slot("requested_slot") != "loan_term" or not product or product.get("frequency") \
            not in FREQUENCIES:
        return None
    count = parse_amount(str(value or ""), language_of(tracker))
    if count is None or count != count.to_integral_value() or count < 1:
        return None
    return int(count), product["frequency"]


class ValidateLoanForm(FormValidationAction):
    """Checks each answer of the calculator form and decides what is still missing."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "validate_loan_form"

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> List[Text]:
        """Country first when it is unknown; frequency only when the product leaves it open."""
        programme = _programme(tracker)
        slots = [] if programme else ["loan_country"]
        slots += ["loan_product", "loan_amount", "loan_term"]
        product = _product(tracker, programme)
        if product is None or "frequency" not in product:
            slots.append("loan_frequency")
        return slots

    def validate_loan_country(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> Dict[Text, Any]:
        """A country the assistant has a programme for."""
        programme = programmes.for_country(str(value or "").upper())
        if programme is None:
            return {"loan_country": None}
        profiles.remember(tracker.sender_id, tracker.get_latest_input_channel(), country=programme.country)
        return {"loan_country": programme.country, "country": programme.country}

    async def extract_loan_product(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: DomainDict) -> Dict[Text, Any]:
        """The product picked by a typed answer ("2", "٢", "je sais pas", "نمی‌دونم").

        Read whatever intent the model gave the answer: "I don't know" often reads as `deny`,
        which the slot mappings skip, and the form would then be left."""
        text = user_text(tracker)
        if tracker.get_slot("requested_slot") != "loan_product" or not text or text.startswith("/"):
            return {}
        programme = _programme(tracker)
        product = calculator.choose_product(text, programme, language_of(tracker)) if programme else None
        return {"loan_product": product["id"]} if product else {}

    async def extract_loan_term(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: DomainDict) -> Dict[Text, Any]:
        """A duration said in a sentence that the entity extractor missed ("لمدة سنة", "over a
        year"); an answer to the duration question itself is read whole by its slot mapping."""
        text = user_text(tracker)
        if (tracker.get_slot("loan_term") or tracker.get_slot("requested_slot") == "loan_term"
                or not text or text.startswith("/") or entity(tracker, "term")):
            return {}
        found = find_duration(text, language_of(tracker))
        return {"loan_term": f"{found[0]} {found[1]}"} if found else {}

    def validate_loan_product(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> Dict[Text, Any]:
        """One of the programme's products (by id, name, number in the list or "I don't know")."""
        programme = _programme(tracker)
        product = calculator.choose_product(str(value or ""), programme, language_of(tracker)) \
            if programme else None
        if product is None:
            return {"loan_product": None}
        slots: Dict[Text, Any] = {"loan_product": product["id"]}
        if "frequency" in product and not tracker.get_slot("loan_frequency"):
            slots["loan_frequency"] = product["frequency"]
        return slots

    def validate_loan_amount(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> Dict[Text, Any]:
        """An amount within the product's limits, as people type it in their language."""
        if _answers_product_question(tracker) or _answers_term_question(tracker):
            return {"loan_amount": _before_this_message(tracker, "loan_amount")}
        # the whole answer first: the model may tag only "20" of "۲۰ هزار" (20 thousand)
        amount = parse_amount(user_text(tracker), language_of(tracker)) \
            if tracker.get_slot("requested_slot") == "loan_amount" else None
        amount = amount if amount is not None else parse_amount(str(value or ""), language_of(tracker))
        programme = _programme(tracker)
        product = _product(tracker, programme)
        if amount is None or amount <= 0:
            example = product["min_amount"] if product else 1000
            dispatcher.utter_message(response="utter_calc_invalid_amount", example=str(example))
            return {"loan_amount": None}
        if product is not None:
            problem = calculator.amount_problem(amount, product)
            if problem:
                dispatcher.utter_message(response=problem[0], **problem[1])
                return {"loan_amount": None}
        return {"loan_amount": str(amount)}

    def validate_loan_term(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                           domain: DomainDict) -> Dict[Text, Any]:
        """A duration ("18 months", "one year", "26 weeks") within the product's limits."""
        if _answers_product_question(tracker):
            return {"loan_term": _before_this_message(tracker, "loan_term")}
        product = _product(tracker, _programme(tracker))
        term = _term(value, language_of(tracker)) or _bare_count_term(value, product, tracker)
        if term is None:
            dispatcher.utter_message(response="utter_calc_invalid_term")
            return {"loan_term": None}
        if product is not None:
            problem = calculator.term_problem(term[0], term[1], product)
            if problem:
                dispatcher.utter_message(response=problem[0], **problem[1])
                return {"loan_term": None}
        return {"loan_term": f"{term[0]} {term[1]}"}

    def validate_loan_frequency(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: DomainDict) -> Dict[Text, Any]:
        """Monthly or weekly payments."""
        return {"loan_frequency": value if value in FREQUENCIES else None}


class ActionAskLoanCountry(Action):
    """Asks the user's country, with one button per country served."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_ask_loan_country"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Utters the question."""
        dispatcher.utter_message(response="utter_ask_country", choices=country_choices())
        return []


class ActionAskLoanProduct(Action):
    """Asks which loan product, one button per product and "I don't know"."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_ask_loan_product"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Utters the question with the programme's products."""
        programme = _programme(tracker) or programmes.default()
        choices = [{"title": p["name"], "payload": '/calculate_repayment{"loan_product":"%s"}' % p["id"]}
                   for p in calculator.products(programme)]
        choices.append({"title": "btn.dont_know",
                        "payload": '/calculate_repayment{"loan_product":"%s"}' % calculator.UNKNOWN_PRODUCT})
        dispatcher.utter_message(response="utter_ask_loan_product", choices=choices)
        return []


class ActionAskLoanAmount(Action):
    """Asks how much, with an example in the product's range."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_ask_loan_amount"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Utters the question."""
        programme = _programme(tracker) or programmes.default()
        product = _product(tracker, programme) or calculator.default_product(programme)
        dispatcher.utter_message(response="utter_ask_loan_amount", example=str(product["min_amount"]))
        return []


class ActionAskLoanTerm(Action):
    """Asks for how long."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_ask_loan_term"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Utters the question."""
        dispatcher.utter_message(response="utter_ask_loan_term")
        return []


class ActionAskLoanFrequency(Action):
    """Asks how often the user will pay."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_ask_loan_frequency"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Utters the question with monthly and weekly buttons."""
        dispatcher.utter_message(response="utter_ask_loan_frequency", choices=[
            {"title": "btn.monthly", "payload": '/calculate_repayment{"frequency":"months"}'},
            {"title": "btn.weekly", "payload": '/calculate_repayment{"frequency":"weeks"}'},
        ])
        return []


def schedule_of(calculation: Dict[str, Any]):
    """Rebuilds the schedule of a stored calculation."""
    programme = programmes.load_all()[calculation["programme"]]
    product = programme.loan_product(calculation["product"])
    terms = calculator.terms_for(programme, product, Decimal(calculation["amount"]), calculation["repayments"],
                                 calculation["frequency"], dt.date.fromisoformat(calculation["disbursed"]))
    return programme, product, build_schedule(terms)


class ActionCalculateRepayment(Action):
    """Works out the schedule and presents it in one short message."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_calculate_repayment"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Utters the result and keeps the calculation for the schedule and reminders."""
        reset = [SlotSet(slot, None) for slot in FORM_SLOTS]
        programme = _programme(tracker) or programmes.default()
        product = _product(tracker, programme) or calculator.default_product(programme)
        term = _term(tracker.get_slot("loan_term"), language_of(tracker))
        frequency = tracker.get_slot("loan_frequency") or product.get("frequency", "months")
        if term is None or not tracker.get_slot("loan_amount"):
            dispatcher.utter_message(response="utter_fallback")
            return reset
        calculation = {
            "programme": programme.id, "product": product["id"], "amount": tracker.get_slot("loan_amount"),
            "repayments": calculator.repayments_for(term[0], term[1], frequency), "frequency": frequency,
            "disbursed": dt.datetime.now(programme.timezone).date().isoformat(),
        }
        try:
            _, _, schedule = schedule_of(calculation)
        except LoanTermsError:
            dispatcher.utter_message(response="utter_calc_invalid_amount", example=str(product["min_amount"]))
            return reset
        key, variables = calculator.result(schedule, product, frequency)
        dispatcher.utter_message(response=key, **variables)
        return reset + [SlotSet("loan_calculation", calculation), SlotSet("country", programme.country)]


class ActionShowSchedule(Action):
    """The whole schedule (a table on Telegram and the web; the next three payments on SMS)."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_show_schedule"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Utters the schedule of the latest calculation."""
        calculation = tracker.get_slot("loan_calculation")
        if not calculation:
            dispatcher.utter_message(response="utter_reminders_nothing_to_set")
            return []
        _, _, schedule = schedule_of(calculation)
        if tracker.get_latest_input_channel() in ("sms", "whatsapp"):
            dispatcher.utter_message(response="utter_calc_next_payments", rows=calculator.rows(schedule, calculator.NEXT_PAYMENTS))
        else:  # one line per payment: principal, interest and total, under a header line
            dispatcher.utter_message(response="utter_calc_schedule_table", header="schedule_table_header",
                                     rows=calculator.rows(schedule))
        return []

"""The repayment calculator in conversation, in each language, down to reminders."""
import datetime as dt
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bot import calculator, reminders, storage
from bot.i18n import Renderer
from bot.loans import build_schedule
from bot.programme import load_all
from tests.conftest import say

CASES = [
    # language, phone prefix, programme, product, typed amount, typed term, amount, payments
    ("en", "+21620", "sample-tn", "start", "2,000", "one year", Decimal(2000), 12),
    ("fr", "+21621", "sample-tn", "start", "2.000", "18 mois", Decimal(2000), 18),
    ("ar", "+21622", "sample-tn", "qard-hassan", "٥٠٠٠", "سنة", Decimal(5000), 12),
    ("fa", "+9370", "sample-af", "murabaha", "۲۰ هزار", "۱۲ ماه", Decimal(20000), 12),
    ("ps", "+9371", "sample-af", "murabaha", "۵۰۰۰۰", "یو کال", Decimal(50000), 12),
    ("ur", "+92300", "sample-pk", "karobar", "2 lakh", "12 mahine", Decimal(200000), 12),
]


def expected_result(programme_id, product_id, amount, payments, language):
    programme = load_all()[programme_id]
    product = programme.loan_product(product_id)
    frequency = product.get("frequency", "months")
    today = dt.datetime.now(programme.timezone).date()
    schedule = build_schedule(calculator.terms_for(programme, product, amount, payments, frequency, today))
    key, variables = calculator.result(schedule, product, frequency)
    return Renderer(language, programme.country, programme.currency).render(key, variables), schedule


@pytest.mark.parametrize("language, prefix, programme_id, product_id, typed_amount, typed_term, amount, payments", CASES)
async def test_a_conversation_reaches_the_right_schedule(assistant, language, prefix, programme_id, product_id,
                                                         typed_amount, typed_term, amount, payments):
    digits = {"+216": 8, "+93": 9, "+92": 10}[next(p for p in ("+216", "+93", "+92") if prefix.startswith(p))]
    national = prefix[len(next(p for p in ("+216", "+93", "+92") if prefix.startswith(p))):]
    sender = f"{prefix}{uuid.uuid4().int % 10**(digits - len(national)):0{digits - len(national)}d}"  # a valid number
    await say(assistant, sender, f'/choose_language{{"language":"{language}"}}')
    replies = await say(assistant, sender, "/calculate_repayment")
    assert replies[-1]["text"] == Renderer(language).gettext("utter_ask_loan_product")
    assert replies[-1]["buttons"][-1]["title"] == Renderer(language).gettext("btn.dont_know")
    await say(assistant, sender, f'/calculate_repayment{{"loan_product":"{product_id}"}}')
    await say(assistant, sender, typed_amount)
    replies = await say(assistant, sender, typed_term)
    if "frequency" not in load_all()[programme_id].loan_product(product_id):  # the product leaves it open
        assert replies[-1]["text"] == Renderer(language).gettext("utter_ask_loan_frequency")
        replies = await say(assistant, sender, '/calculate_repayment{"frequency":"months"}')
    text, schedule = expected_result(programme_id, product_id, amount, payments, language)
    assert replies[-1]["text"] == text
    assert [b["payload"] for b in replies[-1]["buttons"]] == ["/show_schedule", "/set_reminder"]

    replies = await say(assistant, sender, "/show_schedule")  # a table: principal, interest, total
    renderer = Renderer(language, load_all()[programme_id].country, load_all()[programme_id].currency)
    assert replies[-1]["text"] == renderer.render("utter_calc_schedule_table", {
        "header": "schedule_table_header", "rows": calculator.rows(schedule)})
    lines = replies[-1]["text"].splitlines()
    assert len(lines) == payments + 2 and lines[1] == renderer.gettext("schedule_table_header")
    first = schedule.installments[0]
    assert lines[2].count(" | ") == 4 and renderer.format_value(first.interest, "money") in lines[2]

    replies = await say(assistant, sender, "/set_reminder")
    assert len(reminders.pending_for(sender)) == payments
    replies = await say(assistant, sender, "/stop_reminders")
    assert replies[-1]["text"] == Renderer(language).gettext("utter_reminders_stopped")
    assert reminders.pending_for(sender) == []


async def test_amounts_out_of_range_and_unreadable_answers_are_explained(assistant):
    sender = f"+21629{uuid.uuid4().int % 10**6:06d}"
    await say(assistant, sender, "hello", language_hint="en")
    await say(assistant, sender, "/calculate_repayment")
    await say(assistant, sender, '/calculate_repayment{"loan_product":"start"}')
    replies = await say(assistant, sender, "a lot of money")
    assert replies[0]["text"].startswith("I could not read that amount")
    replies = await say(assistant, sender, "50000")
    assert "10,000" in replies[0]["text"] and "1,000" in replies[0]["text"]  # the product's limits
    replies = await say(assistant, sender, "3000")
    assert replies[-1]["text"] == Renderer("en").gettext("utter_ask_loan_term")
    replies = await say(assistant, sender, "10 years")
    assert "24" in replies[0]["text"]
    replies = await say(assistant, sender, "2 years")
    assert "24 monthly payments" in replies[-1]["text"]


async def test_forget_me_removes_everything(assistant, tracker_db):
    sender = f"+21628{uuid.uuid4().int % 10**6:06d}"
    await say(assistant, sender, "bonjour", language_hint="fr")
    await say(assistant, sender, "/calculate_repayment")
    await say(assistant, sender, '/calculate_repayment{"loan_product":"start"}')
    await say(assistant, sender, "3000")
    await say(assistant, sender, "12 mois")
    await say(assistant, sender, "/set_reminder")
    assert reminders.pending_for(sender)
    replies = await say(assistant, sender, "/forget_me")
    assert replies[-1]["text"] == Renderer("fr").gettext("utter_ask_forget_confirm")
    replies = await say(assistant, sender, "/affirm")
    assert replies[-1]["text"] == Renderer("fr").gettext("utter_forget_done")
    with storage.engine().connect() as db:
        for table in ("profiles", "reminders"):
            count = db.execute(sa.text(f"select count(*) from {table} where sender_id = :s"), {"s": sender}).scalar()
            assert count == 0, table
    tracker_engine = sa.create_engine(f"sqlite:///{tracker_db}")
    with tracker_engine.connect() as db:
        count = db.execute(sa.text("select count(*) from events where sender_id = :s"), {"s": sender}).scalar()
    assert count == 0


# ---- picking the product by typing its number or "I don't know" ----------------------------

TERM_OF_A_YEAR = {"en": "12 months", "fr": "12 mois", "ar": "سنة", "fa": "۱۲ ماه", "ps": "یو کال", "ur": "12 mahine"}
PICKS = [
    # language, phone prefix, programme, typed answer to "which loan?", product it picks
    ("en", "+21620", "sample-tn", "2", "qard-hassan"),
    ("en", "+21620", "sample-tn", "I don't know", "start"),
    ("fr", "+21621", "sample-tn", "je sais pas", "start"),
    ("fr", "+21621", "sample-tn", "2", "qard-hassan"),
    ("ar", "+21622", "sample-tn", "٢", "qard-hassan"),
    ("ar", "+21622", "sample-tn", "معرفش", "start"),
    ("ar", "+21622", "sample-tn", "٣", "start"),  # the last option of the menu: "I don't know"
    ("fa", "+9370", "sample-af", "۲", "livestock"),
    ("fa", "+9370", "sample-af", "نمی‌دونم", "murabaha"),
    ("fa", "+9370", "sample-af", "نمیدونم", "murabaha"),
    ("ps", "+9371", "sample-af", "نه پوهېږم", "murabaha"),
    ("ur", "+92300", "sample-pk", "pata nahi", "karobar"),
    ("ur", "+92300", "sample-pk", "مجھے نہیں پتا", "karobar"),
    ("ur", "+92300", "sample-pk", "۲", "qarz-e-hasna"),
]


def valid_number(prefix: str) -> str:
    """A valid mobile number that starts with `prefix`."""
    country = next(p for p in ("+216", "+93", "+92") if prefix.startswith(p))
    digits = {"+216": 8, "+93": 9, "+92": 10}[country] - len(prefix) + len(country)
    return f"{prefix}{uuid.uuid4().int % 10**digits:0{digits}d}"


@pytest.mark.parametrize("language, prefix, programme_id, typed, product_id", PICKS)
async def test_the_product_is_picked_by_its_number_or_by_not_knowing(assistant, language, prefix, programme_id,
                                                                     typed, product_id):
    sender = valid_number(prefix)
    programme = load_all()[programme_id]
    product = programme.loan_product(product_id)
    renderer = Renderer(language, programme.country, programme.currency)
    await say(assistant, sender, f'/choose_language{{"language":"{language}"}}')
    await say(assistant, sender, "/calculate_repayment")
    replies = await say(assistant, sender, typed)
    # the form goes on to the amount, with an example in the picked product's range
    assert replies[-1]["text"] == renderer.render("utter_ask_loan_amount", {"example": str(product["min_amount"])})
    await say(assistant, sender, str(product["min_amount"]))
    replies = await say(assistant, sender, TERM_OF_A_YEAR[language])
    if "frequency" not in product:
        assert replies[-1]["text"] == renderer.gettext("utter_ask_loan_frequency")
        replies = await say(assistant, sender, '/calculate_repayment{"frequency":"months"}')
    frequency = product.get("frequency", "months")
    payments = calculator.repayments_for(12, "months", frequency)
    text, _ = expected_result(programme_id, product_id, Decimal(product["min_amount"]), payments, language)
    assert replies[-1]["text"] == text


async def test_a_plain_no_still_leaves_the_calculator_and_a_wrong_number_asks_again(assistant):
    sender = valid_number("+21623")
    en = Renderer("en")
    await say(assistant, sender, '/choose_language{"language":"en"}')
    await say(assistant, sender, "/calculate_repayment")
    replies = await say(assistant, sender, "7")  # the menu has three options
    assert replies[-1]["text"] == en.gettext("utter_ask_loan_product")
    replies = await say(assistant, sender, "no")
    assert replies[-1]["text"] == en.gettext("utter_deny")
    replies = await say(assistant, sender, "5000")  # the calculator is closed: not taken as an amount
    assert en.gettext("utter_ask_loan_term") not in [r.get("text") for r in replies]


async def test_on_sms_the_schedule_is_the_next_three_payments(assistant):
    from channels.webchat import WebChatOutput
    from rasa.core.channels.channel import UserMessage

    sender = valid_number("+21624")
    collector = WebChatOutput()
    for text in ('/choose_language{"language":"fr"}', "/calculate_repayment",
                 '/calculate_repayment{"loan_product":"start"}', "3000", "12 mois", "/show_schedule"):
        collector.messages.clear()
        await assistant.handle_message(UserMessage(text, collector, sender, input_channel="sms"))
    _, schedule = expected_result("sample-tn", "start", Decimal(3000), 12, "fr")
    fr = Renderer("fr", "TN", "TND")
    assert collector.messages[-1]["text"] == fr.render("utter_calc_next_payments",
                                                       {"rows": calculator.rows(schedule, 3)})
    assert len(collector.messages[-1]["text"].splitlines()) == 4


async def test_an_amount_given_earlier_survives_picking_the_product_by_number(assistant):
    sender = valid_number("+21625")
    ar = Renderer("ar", "TN", "TND")
    await say(assistant, sender, '/choose_language{"language":"ar"}')
    replies = await say(assistant, sender, '/calculate_repayment{"amount":"3000"}')
    assert replies[-1]["text"] == ar.gettext("utter_ask_loan_product")
    replies = await say(assistant, sender, "٢")  # the model also reads "2" as an amount: it is not one here
    assert replies[-1]["text"] == ar.gettext("utter_ask_loan_term")
    replies = await say(assistant, sender, "سنة")
    assert replies[-1]["text"] == ar.gettext("utter_ask_loan_frequency")  # qard hassan leaves it open
    replies = await say(assistant, sender, '/calculate_repayment{"frequency":"months"}')
    text, _ = expected_result("sample-tn", "qard-hassan", Decimal(3000), 12, "ar")
    assert replies[-1]["text"] == text


@pytest.mark.parametrize("language, question, payments", [
    ("ar", "كم سأدفع إذا أخذت قرض 5000 دينار لمدة سنة", 12),
    ("fr", "je veux emprunter 5000 sur deux ans, ça fait combien par mois ?", 24),
])
async def test_a_duration_in_words_in_the_first_question_is_not_asked_again(assistant, language, question,
                                                                              payments):
    sender = valid_number("+21625")
    await say(assistant, sender, f'/choose_language{{"language":"{language}"}}')
    replies = await say(assistant, sender, question)
    assert replies[-1]["text"] == Renderer(language, "TN", "TND").gettext("utter_ask_loan_product")
    replies = await say(assistant, sender, "1")
    text, _ = expected_result("sample-tn", "start", Decimal(5000), payments, language)
    assert replies[-1]["text"] == text


@pytest.mark.parametrize("language, question, term", [
    ("en", "I came back a year ago, how much would a loan of 5000 cost me per month?", "18"),
    ("fr", "je suis rentré il y a deux ans, combien je paierai pour un prêt de 5000 ?", "18 mois"),
    ("ar", "رجعت من سنتين، كم سأدفع إذا أخذت قرض 5000 دينار", "١٨"),  # a number alone counts payments
])
async def test_a_time_gone_by_is_not_taken_for_the_loan_duration(assistant, language, question, term):
    sender = valid_number("+21625")
    renderer = Renderer(language, "TN", "TND")
    await say(assistant, sender, f'/choose_language{{"language":"{language}"}}')
    replies = await say(assistant, sender, question)
    assert replies[-1]["text"] == renderer.gettext("utter_ask_loan_product")
    replies = await say(assistant, sender, "1")
    assert replies[-1]["text"] == renderer.gettext("utter_ask_loan_term")
    replies = await say(assistant, sender, term)
    text, _ = expected_result("sample-tn", "start", Decimal(5000), 18, language)
    assert replies[-1]["text"] == text


async def test_a_number_alone_counts_weeks_for_a_weekly_loan(assistant):
    sender = valid_number("+92300")
    programme = load_all()["sample-pk"]
    renderer = Renderer("ur", programme.country, programme.currency)
    await say(assistant, sender, '/choose_language{"language":"ur"}')
    await say(assistant, sender, '/calculate_repayment{"loan_product":"qarz-e-hasna"}')
    replies = await say(assistant, sender, "50000")
    assert replies[-1]["text"] == renderer.gettext("utter_ask_loan_term")
    replies = await say(assistant, sender, "۲۰")
    text, schedule = expected_result("sample-pk", "qarz-e-hasna", Decimal(50000), 20, "ur")
    assert replies[-1]["text"] == text
    assert len(schedule.installments) == 20

"""Real conversations with the trained assistant, its action server and a SQLite tracker store."""
import re
import time
import types
import uuid

import pytest
import sqlalchemy as sa
from rasa.shared.core.events import SlotSet

from bot import storage
from bot.i18n import Renderer
from bot.menus import payload_for_reply
from tests.conftest import load_assistant, say


def new_sender() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def text_of(key: str, language: str) -> str:
    return Renderer(language).gettext(key)


async def test_first_contact_offers_the_language_menu_preselected_from_the_hint(assistant):
    replies = await say(assistant, new_sender(), "hello", language_hint="fr")
    assert replies[0]["text"] == text_of("utter_language_menu", "fr")
    assert [b["payload"] for b in replies[0]["buttons"]][2] == '/choose_language{"language":"ar"}'
    assert replies[1]["text"] == text_of("utter_greet", "fr")


@pytest.mark.parametrize(
    "greeting, language",
    [("السلام عليكم، كيف الحال", "ar"), ("سلام، چطور هستید", "fa"), ("السلام علیکم، آپ کیسے ہیں", "ur"),
     ("bonjour, comment ça va", "fr"), ("good morning, how are you", "en"), ("سلام، ته څنګه یې", "ps")],
)
async def test_without_a_hint_the_language_of_the_text_is_used(assistant, greeting, language):
    replies = await say(assistant, new_sender(), greeting)
    assert replies[0]["text"] == text_of("utter_language_menu", language)
    assert replies[-1]["text"] == text_of("utter_greet", language)


@pytest.mark.parametrize("first_message, language", [
    ("شلون اقدر اخذ قرض", "ar"),        # Iraqi Arabic, which langid alone reads as Farsi
    ("زه غوارم یو پور واخلم", "ps"),     # Pashto typed without Pashto letters
])
async def test_a_first_message_without_telling_letters_is_placed_by_its_words(assistant, first_message,
                                                                                language):
    sender = new_sender()
    replies = await say(assistant, sender, first_message)
    assert replies[0]["text"] == text_of("utter_language_menu", language)
    tracker = await assistant.tracker_store.retrieve(sender)
    assert tracker.get_slot("language") == language


async def test_switching_language_by_name_then_by_menu_number(assistant):
    sender = new_sender()
    await say(assistant, sender, "hi", language_hint="en")
    replies = await say(assistant, sender, "je veux parler en français")
    assert replies[-1]["text"] == text_of("utter_language_changed", "fr")
    replies = await say(assistant, sender, "hello")
    assert replies[-1]["text"] == text_of("utter_greet", "fr")  # an explicit choice sticks

    replies = await say(assistant, sender, "change language")
    assert replies[-1]["text"] == text_of("utter_language_menu", "fr")
    tracker = await assistant.tracker_store.retrieve(sender)
    payload = payload_for_reply("۵", list(tracker.events))  # Persian digit five: Pashto
    assert payload == '/choose_language{"language":"ps"}'
    replies = await say(assistant, sender, payload)
    assert replies[-1]["text"] == text_of("utter_language_changed", "ps")


async def test_the_language_survives_a_restart(action_server, tracker_db, assistant):
    sender = new_sender()
    await say(assistant, sender, "hi")
    await say(assistant, sender, "اردو")
    restarted = await load_assistant(action_server, tracker_db)
    replies = await say(restarted, sender, "hello")
    assert replies[-1]["text"] == text_of("utter_greet", "ur")
    with storage.engine().connect() as db:
        language = db.execute(sa.text("select language from profiles where sender_id = :s"), {"s": sender}).scalar()
    assert language == "ur"


async def test_a_question_asks_the_country_once_then_answers_with_its_facts(assistant):
    sender = new_sender()
    await say(assistant, sender, "salam", language_hint="fa")
    replies = await say(assistant, sender, "چقدر قرضه گرفته میتوانم؟")
    assert replies[-1]["text"] == text_of("utter_ask_country", "fa")
    assert '/choose_country{"country":"AF"}' in [b["payload"] for b in replies[-1]["buttons"]]
    replies = await say(assistant, sender, '/choose_country{"country":"AF"}')
    assert "۱۵۰٬۰۰۰" in replies[-1]["text"]  # the Afghan sample's largest loan, in Persian digits
    replies = await say(assistant, sender, "دفتر شما کجاست و چه وقت باز است؟")
    assert "دفتر کابل" in replies[-1]["text"]  # no second country question


async def test_the_country_comes_from_a_phone_number(assistant):
    sender = "+21620123456"
    await say(assistant, sender, "bonjour", language_hint="fr")
    replies = await say(assistant, sender, "combien je peux emprunter au maximum ?")
    assert "10\u202f000\u00a0DT" in replies[-1]["text"]  # the Tunisian sample, without asking


async def test_not_understood_is_answered_kindly_and_kept_without_the_sender(assistant):
    sender = new_sender()
    await say(assistant, sender, "مرحبا")
    nonsense = "zxqv blorp frobnicate"
    replies = await say(assistant, sender, nonsense)
    assert replies[-1]["text"] == text_of("utter_fallback", "ar")
    assert [b["payload"] for b in replies[-1]["buttons"]] == ["/help", "/request_advisor"]
    with storage.engine().connect() as db:
        row = db.execute(sa.text("select * from unanswered_questions where text = :t"), {"t": nonsense}).mappings().one()
    assert row["language"] == "ar" and row["reason"] == "fallback"
    assert sender not in " ".join(str(v) for v in row.values())


async def test_the_menu_opens_sub_menus(assistant):
    sender = new_sender()
    await say(assistant, sender, "hello", language_hint="en")
    replies = await say(assistant, sender, "menu")
    assert replies[-1]["text"] == text_of("utter_help", "en") and len(replies[-1]["buttons"]) == 6
    replies = await say(assistant, sender, '/help{"menu":"grants"}')
    assert replies[-1]["text"] == text_of("utter_menu_grants", "en")


async def test_after_a_long_pause_a_new_session_keeps_what_the_user_told_us_not_the_unfinished_form(
        assistant, monkeypatch):
    import rasa.core.processor

    sender = new_sender()
    await say(assistant, sender, "salam", language_hint="fa")
    await say(assistant, sender, '/choose_language{"language":"fa"}')
    await say(assistant, sender, '/choose_country{"country":"AF"}')
    replies = await say(assistant, sender, "/calculate_repayment")
    assert replies[-1]["text"] == text_of("utter_ask_loan_product", "fa")
    before = await assistant.tracker_store.retrieve(sender)
    assert before.active_loop_name == "loan_form" and before.get_slot("requested_slot")

    five_hours_later = time.time() + 5 * 3600  # the domain's sessions expire after 4 hours
    clock = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
    clock.time = lambda: five_hours_later
    monkeypatch.setattr(rasa.core.processor, "time", clock)
    replies = await say(assistant, sender, "سلام")

    assert replies[-1]["text"] == text_of("utter_greet", "fa")  # in the language chosen before the pause
    after = await assistant.tracker_store.retrieve(sender)
    assert after.events[0].type_name == "session_started"
    carried = [e for e in after.events if isinstance(e, SlotSet)]
    assert [e.key for e in carried] == sorted({e.key for e in carried})  # one SlotSet per slot, no history
    assert {e.key: e.value for e in carried if e.key in ("language", "language_chosen", "country")} == {
        "language": "fa", "language_chosen": True, "country": "AF"}
    assert after.active_loop_name is None and after.get_slot("requested_slot") is None
    everything = await assistant.tracker_store.retrieve_full_tracker(sender)
    assert len(everything.events) > len(after.events)  # the old session stays stored


@pytest.mark.parametrize("greeting, question, language", [
    ("bonjour,", "je peux avoir une subvention ?", "fr"),
    ("salam,", "how do I get a loan?", "en"),
])
async def test_a_greeting_followed_by_a_question_gets_the_answer(assistant, greeting, question, language):
    answers = []
    for text in (question, f"{greeting} {question}"):
        sender = f"+21620{uuid.uuid4().int % 10**6:06d}"  # Tunisian: the country is known
        await say(assistant, sender, "hello", language_hint=language)
        answers.append([(r.get("text"), r.get("buttons")) for r in await say(assistant, sender, text)])
    assert answers[0][-1][0] != text_of("utter_greet", language)
    assert answers[1] == answers[0]


async def responses_to_last_message(assistant, sender):
    """The response keys of the assistant's messages since the user's latest one."""
    from rasa.shared.core.events import BotUttered, UserUttered

    tracker = await assistant.tracker_store.retrieve(sender)
    keys = []
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            break
        if isinstance(event, BotUttered):
            keys.insert(0, (event.metadata or {}).get("utter_action"))
    return keys


@pytest.mark.parametrize("language, question, yes, expected", [
    ("fr", "est-ce que je peux avoir un microcrédit ?", "oui", "utter_faq/loan_apply"),
    ("ar", "ما هي شروط الحصول على قرض صغير", "نعم", "utter_faq/loan_apply"),
    ("en", "how much is the interest on your loans", "yes please", "utter_ask_"),  # the calculator starts
    ("fr", "c'est quoi un groupe d'épargne ?", "oui", "utter_handoff_"),  # an advisor is asked for
    ("en", "hello", "yes", "utter_affirm"),  # nothing was offered
])
async def test_a_yes_takes_the_step_the_answer_offered(assistant, language, question, yes, expected):
    sender = "+2162" + str(uuid.uuid4().int)[:7]  # a Tunisian number: the programme is known
    await say(assistant, sender, "bonjour", language_hint=language)
    await say(assistant, sender, question)
    await say(assistant, sender, yes)
    responses = await responses_to_last_message(assistant, sender)
    assert responses and responses[-1].startswith(expected), responses


async def test_a_yes_to_an_answer_given_after_a_yes_follows_the_new_offer(assistant):
    sender = "+2162" + str(uuid.uuid4().int)[:7]
    await say(assistant, sender, "bonjour", language_hint="fr")
    await say(assistant, sender, "est-ce que je peux avoir un microcrédit ?")
    await say(assistant, sender, "oui")
    await say(assistant, sender, "oui")
    assert await responses_to_last_message(assistant, sender) == ["utter_faq/loan_documents"]


@pytest.mark.parametrize("language, prefix, question, follow_up, expected", [
    ("en", "+2162", "how much is the grant?", "how do I apply", "utter_faq/grant_apply"),
    ("en", "+2162", "how much is the grant?", "who can get it", "utter_faq/grant_eligibility"),
    ("en", "+2162", "who can get a grant?", "how much is it", "utter_faq/grant_amount"),  # not understood alone
    ("fa", "+9370", "کمک بلاعوض چقدر است؟", "چطور درخواست بدهم", "utter_faq/grant_apply"),
    ("fr", "+2162", "comment demander un prêt", "quels papiers faut-il", "utter_faq/loan_documents"),
    # a question that names its subject keeps it
    ("en", "+2162", "how do I apply for a loan", "what documents do I need to register my business",
     "utter_faq/registration_documents"),
])
async def test_a_short_follow_up_is_read_in_the_light_of_the_previous_answer(assistant, language, prefix,
                                                                                question, follow_up, expected):
    sender = prefix + str(uuid.uuid4().int)[:7]
    await say(assistant, sender, "hello", language_hint=language)
    await say(assistant, sender, question)
    await say(assistant, sender, follow_up)
    assert await responses_to_last_message(assistant, sender) == [expected]


async def test_gibberish_after_an_answer_is_still_not_understood_and_counts_once(assistant):
    sender = "+2162" + str(uuid.uuid4().int)[:7]
    await say(assistant, sender, "hello", language_hint="en")
    await say(assistant, sender, "who can get a grant?")
    await say(assistant, sender, "how much is it")  # answered from the context, not a fallback
    await say(assistant, sender, "asdfgh qwerty")
    assert await responses_to_last_message(assistant, sender) == ["utter_fallback"]


@pytest.mark.parametrize("hint", ["ar", None])
async def test_tunisian_arabic_is_answered_in_arabic_not_farsi(assistant, hint):
    sender = "+2162" + str(uuid.uuid4().int)[:7]
    metadata = {"language_hint": hint} if hint else {}
    await say(assistant, sender, "السلام عليكم", **metadata)
    replies = await say(assistant, sender, "نحب ناخذ قرض باش نحل حانوت")  # langid alone: Farsi, 0.96
    replies += await say(assistant, sender, "شنو لازم نسوي باش نسجل المشروع متاعي")
    tracker = await assistant.tracker_store.retrieve(sender)
    assert tracker.get_slot("language") == "ar"
    assert not re.search("[پچژگیک]", " ".join(r.get("text") or "" for r in replies))  # no Farsi letters

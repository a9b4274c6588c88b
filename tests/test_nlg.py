"""Rendering response keys: language, locale formats, native digits, buttons, channel shape."""
import re

import pytest
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker

from bot.i18n import Renderer
from bot.nlg import CatalogNLG

ARABIC_SCRIPT = re.compile("[\u0600-\u06ff]")
PERSIAN_DIGITS = re.compile("[۰-۹]")


def tracker(language=None, country=None):
    events = [SlotSet("language", language)] if language else []
    if country:
        events.append(SlotSet("country", country))
    return DialogueStateTracker.from_events("nlg-test", events)


@pytest.mark.parametrize("language", ["en", "fr", "ar", "fa", "ps", "ur"])
async def test_greeting_is_rendered_in_the_users_language(language):
    message = await CatalogNLG().generate("utter_greet", tracker(language), "webchat")
    expected = Renderer(language).gettext("utter_greet")
    assert message["text"] == expected and expected != "utter_greet"
    assert bool(ARABIC_SCRIPT.search(message["text"])) == (language in ("ar", "fa", "ps", "ur"))


async def test_money_in_farsi_uses_persian_digits_and_afghanis():
    message = await CatalogNLG().generate(
        "utter_faq/loan_amounts", tracker("fa", "AF"), "webchat", min=20000, max=150000, min_term=6, max_term=18
    )
    assert "۲۰٬۰۰۰" in message["text"] and "۱۵۰٬۰۰۰" in message["text"]
    assert "20000" not in message["text"] and "؋" in message["text"]


async def test_money_in_french_for_tunisia_uses_three_decimals():
    message = await CatalogNLG().generate(
        "utter_faq/loan_amounts", tracker("fr", "TN"), "webchat", min=1000, max=10000, min_term=6, max_term=24
    )
    assert "1\u202f000\u00a0DT" in message["text"]  # CLDR fr_TN: dinar symbol; whole amounts without decimals


@pytest.mark.parametrize("language, count", [("ar", 1), ("ar", 2), ("ar", 5), ("ar", 11), ("en", 1), ("en", 18)])
def test_plural_forms_follow_the_count(language, count):
    renderer = Renderer(language, "TN", "TND")
    text = renderer.render("utter_calc_result_months", {
        "amount": 5000, "product": "x", "count": count, "installment": 300, "total": 5400, "cost": 400, "apr": 14.2})
    if language == "en":
        assert ("payments" in text) == (count != 1)
    else:
        forms = {renderer.gettext("utter_calc_result_months", n) for n in (0, 1, 2, 5, 11, 100)}
        assert len(forms) > 1  # Arabic really has several forms
    assert "{" not in text


async def test_buttons_are_translated_and_keep_their_payloads():
    message = await CatalogNLG().generate("utter_help", tracker("ar"), "webchat")
    titles = [b["title"] for b in message["buttons"]]
    assert titles[0] == Renderer("ar").gettext("btn.loans")
    assert message["buttons"][0]["payload"] == '/help{"menu":"loans"}'
    assert message["buttons"][-1]["payload"] == "/request_advisor"


async def test_language_menu_lists_each_language_in_its_own_script():
    message = await CatalogNLG().generate("utter_language_menu", tracker("fr"), "webchat")
    titles = [b["title"] for b in message["buttons"]]
    assert titles == ["English", "Français", "العربية", Renderer("fa").gettext("lang_name"), "پښتو", "اردو"]


async def test_sms_gets_a_numbered_menu():
    message = await CatalogNLG().generate("utter_help", tracker("en"), "sms")
    assert "1. Loans" in message["text"] and "6. Talk to an advisor" in message["text"]


async def test_country_buttons_use_the_locale_country_names():
    message = await CatalogNLG().generate(
        "utter_ask_country", tracker("ar"), "webchat",
        choices=[{"title": "country@TN", "payload": "/choose_country{\"country\":\"TN\"}"}])
    assert message["buttons"][0]["title"] == "تونس"


async def test_a_missing_variable_does_not_crash():
    message = await CatalogNLG().generate("utter_faq/loan_amounts", tracker("en"), "webchat")
    assert message["text"] and "…" in message["text"]


async def test_language_given_by_the_action_wins_over_the_slot():
    message = await CatalogNLG().generate("utter_greet", tracker("en"), "webchat", language="ps")
    assert message["text"] == Renderer("ps").gettext("utter_greet")


@pytest.mark.parametrize("language", ["en", "fr", "ar", "fa", "ps", "ur"])
def test_opening_hours_name_each_group_of_days_once(language):
    from babel.dates import get_day_names

    renderer = Renderer(language, "TN", "TND")
    hours = {"mon": "08:00-16:00", "tue": "08:00-16:00", "wed": "08:00-16:00", "thu": "08:00-16:00",
             "fri": "08:00-12:30"}
    text = renderer.format_hours(hours)
    friday = get_day_names("abbreviated", locale=renderer.locale)[4]
    assert text.count(friday) == 1, text

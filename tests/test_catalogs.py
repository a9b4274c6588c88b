"""Every catalog says everything, with the same placeholders as English."""
import re
from pathlib import Path

import pytest
import yaml

from bot import faq
from bot.i18n import Renderer, available_languages
from bot.i18n_tools import catalog_problems, read_catalog

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ["en", "fr", "ar", "fa", "ps", "ur"]


def english_keys():
    return {m.id if isinstance(m.id, str) else m.id[0] for m in read_catalog("en") if m.id}


def test_the_six_languages_have_catalogs():
    assert set(LANGUAGES) <= set(available_languages())


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalog_is_complete_with_the_same_placeholders(language):
    assert catalog_problems(language) == []


def _keys_the_code_uses():
    keys = set()
    for path in (ROOT / "actions").glob("*.py"):
        keys |= set(re.findall(r'response="([^"{]+)"', path.read_text(encoding="utf-8")))
    domain = yaml.safe_load((ROOT / "bot" / "domain" / "responses.yml").read_text(encoding="utf-8"))
    keys |= set(domain["responses"])
    buttons = yaml.safe_load((ROOT / "bot" / "buttons.yml").read_text(encoding="utf-8"))
    keys |= set(buttons)
    keys |= {b["title"] for bs in buttons.values() for b in bs if "@" not in b["title"]}
    keys |= {f"utter_faq/{t}" for t in faq.TOPICS} | {f"topic.{t}" for t in faq.TOPICS}
    keys |= {"utter_faq/loan_interest_free_none", "utter_faq/loan_late_payment_no_fee"}
    keys |= {f"utter_menu_{m}" for m in ("loans", "grants", "registration", "admin")}
    schema = yaml.safe_load((ROOT / "bot" / "programme_schema.yml").read_text(encoding="utf-8"))
    keys |= {f"doc.{d}" for d in schema["definitions"]["docs"]["items"]["enum"]}
    keys |= {f"guarantee.{g}" for g in schema["properties"]["loans"]["properties"]["guarantee"]["enum"]}
    keys |= {f"grant_form.{g}" for g in schema["properties"]["grants"]["properties"]["form"]["enum"]}
    return keys


def test_every_key_the_code_uses_is_in_the_catalog():
    assert _keys_the_code_uses() - english_keys() == set()


def test_domain_defaults_are_the_english_catalog():
    domain = yaml.safe_load((ROOT / "bot" / "domain" / "responses.yml").read_text(encoding="utf-8"))
    renderer = Renderer("en")
    for key, variations in domain["responses"].items():
        assert variations[0]["text"] == renderer.gettext(key), f"run python -m bot.i18n_tools sync-domain ({key})"


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_name_is_written_in_its_own_script(language):
    name = Renderer(language).gettext("lang_name")
    arabic_script = bool(re.search("[\u0600-\u06ff]", name))
    assert arabic_script == (language in ("ar", "fa", "ps", "ur"))


def test_an_sms_text_needs_a_full_text_and_no_placeholder_of_its_own():
    from babel.messages.catalog import Catalog

    from bot.i18n_tools import sms_text_problems

    source, target = Catalog(locale="en"), Catalog(locale="ar")
    source.add("utter_x", "Bring {documents:keylist} to {office}.")
    target.add("utter_x.sms", "{documents:keylist} الى {office}")
    target.add("utter_y.sms", "لا شيء")
    target.add("utter_x.sms.sms", "x")
    assert sms_text_problems(source, target) == [
        "catalog: utter_y.sms is the SMS text of a key English does not have",
        "catalog: utter_x.sms.sms is the SMS text of a key English does not have",
    ]
    target = Catalog(locale="ar")
    target.add("utter_x.sms", "{documents:keylist} {phone}")
    assert sms_text_problems(source, target) == [
        "catalog: utter_x.sms has placeholders ['phone'] its full text lacks"]

"""SMS encoding, segment counts, pages within the budget, and the NLG's SMS shape."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker

from bot.i18n import Renderer
from bot.nlg import CatalogNLG
from channels.sms import MAX_SEGMENTS, encoding, fits, paginate, prefer_gsm7, segments, summary


@pytest.mark.parametrize("text, expected_encoding, expected_segments", [
    ("a" * 160, "GSM-7", 1),
    ("a" * 161, "GSM-7", 2),
    ("a" * 306, "GSM-7", 2),
    ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1),               # extension characters cost two septets
    ("€" * 81, "GSM-7", 2),
    ("a" * 152 + "€" + "a" * 10, "GSM-7", 2),  # the escape pair is not split across segments
    ("a" * 159 + "[", "GSM-7", 2),
    ("é" * 160, "GSM-7", 1),               # é is in the GSM-7 alphabet
    ("ê" * 70, "UCS-2", 1),
    ("ê" * 71, "UCS-2", 2),
    ("س" * 134, "UCS-2", 2),
    ("س" * 135, "UCS-2", 3),
    ("😀" * 35, "UCS-2", 1),               # an emoji is two UTF-16 code units
    ("😀" * 36, "UCS-2", 2),
    ("", "GSM-7", 1),
])
def test_segments_follow_gsm7_and_ucs2_limits(text, expected_encoding, expected_segments):
    assert (encoding(text), segments(text)) == (expected_encoding, expected_segments)


@pytest.mark.parametrize("text, expected", [
    ("“Hello” – it’s…", '"Hello" - it\'s...'),
    ("Le prêt « Démarrage » coûte 10\u202f000\u00a0TND.", 'Le pret "Démarrage" coute 10 000 TND.'),
    ("Reçu", "Recu"),
    ("مرحبا «صديقي»", "مرحبا «صديقي»"),            # Arabic needs UCS-2: kept as written
    ("Loan: 5\u202f000 AFN ✓", "Loan: 5\u202f000 AFN ✓"),  # ✓ has no GSM-7 form: nothing to gain
])
def test_text_is_made_gsm7_where_the_language_allows_it(text, expected):
    assert prefer_gsm7(text) == expected


def test_a_short_text_is_one_page():
    assert paginate("Hello.", "Reply MORE.") == ["Hello."]


def test_a_long_text_is_cut_at_sentences_with_more_on_every_page_but_the_last():
    sentences = [f"Sentence number {i} says something useful about loans." for i in range(30)]
    pages = paginate(" ".join(sentences), "Reply MORE for the rest.", tail="1. Loans\n2. Grants\nReply with a number.")
    assert len(pages) > 1 and all(fits(p) for p in pages)
    assert all(p.endswith("\nReply MORE for the rest.") for p in pages[:-1])
    assert pages[-1].endswith("1. Loans\n2. Grants\nReply with a number.")  # the menu stays whole, last
    bodies = [p.removesuffix("\nReply MORE for the rest.") for p in pages]
    assert all(re.search(r"useful about loans\.$", b) for b in bodies[:-1])  # cut after a sentence
    assert " ".join(bodies).replace("\n", " ").split() == (
        " ".join(sentences) + " 1. Loans 2. Grants Reply with a number.").split()


def test_an_arabic_text_is_paged_in_ucs2_budget():
    sentence = "يمكنك الحصول على قرض صغير لبدء مشروعك بعد العودة. "
    pages = paginate(sentence * 12, "أرسل «المزيد» للبقية.")
    assert len(pages) >= 3 and all(segments(p) <= MAX_SEGMENTS for p in pages)
    assert all(encoding(p) == "UCS-2" for p in pages)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("abc de.?!\nسلام۔؟€ê"), min_size=1, max_size=120),
                min_size=1, max_size=12),
       st.sampled_from(["Reply MORE.", "أرسل المزيد."]))
def test_every_page_fits_the_budget_and_no_word_is_lost(parts, hint):
    text = " ".join(parts)
    pages = paginate(text, hint)
    assert all(fits(p) for p in pages)
    bodies = [p[:-len("\n" + hint)] if i < len(pages) - 1 else p for i, p in enumerate(pages)]
    assert "".join("".join(bodies).split()) == "".join(text.split())


def tracker(language: str, country: str = "TN") -> DialogueStateTracker:
    return DialogueStateTracker.from_events("sms-test", [SlotSet("language", language), SlotSet("country", country)])


@pytest.mark.parametrize("language", ["en", "fr", "ar", "fa", "ps", "ur"])
async def test_the_nlg_shapes_a_numbered_menu_in_pages_within_the_budget(language):
    message = await CatalogNLG().generate("utter_help", tracker(language), "sms")
    renderer = Renderer(language)
    assert renderer.render("menu.reply_hint") in message["text"]
    assert all(segments(p) <= MAX_SEGMENTS for p in message["sms_pages"])
    assert message["sms_pages"][-1].endswith(prefer_gsm7(renderer.render("menu.reply_hint")))
    assert len(message["buttons"]) == 6  # kept, so that a reply "2" can be resolved


async def test_whatsapp_gets_a_numbered_menu_without_pages():
    message = await CatalogNLG().generate("utter_help", tracker("fr"), "whatsapp")
    assert "1. " in message["text"] and "sms_pages" not in message


async def test_telegram_keeps_its_buttons():
    message = await CatalogNLG().generate("utter_help", tracker("fr"), "telegram")
    assert "1. " not in message["text"] and len(message["buttons"]) == 6


def test_summary_gives_median_and_worst():
    assert summary([1, 3, 2]) == (2, 3) and summary([1, 2, 2, 3]) == (2, 3) and summary([]) == (0, 0)


def test_the_report_covers_the_six_languages():
    from channels.sms import report

    lines = report().splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["ar", "en", "fa", "fr", "ps", "ur"]
    assert all(int(line.split()[7]) <= MAX_SEGMENTS for line in lines[1:])  # worst per message sent

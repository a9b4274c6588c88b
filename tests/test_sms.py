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


ROW = re.compile(r"^(?P<language>[a-z]{2})\s+(?P<responses>\d+)\s+(?P<page_median>[\d.]+) / (?P<page_worst>\d+)\s+"
                 r"(?P<whole_median>[\d.]+) / (?P<whole_worst>\d+)\s+(?P<pages>\d+)\s+(?P<at_budget>\d+)%"
                 r"\s+(?P<paged>\d+)%\s+(?P<ucs2>\d+)%$")


@pytest.fixture(scope="module")
def measured():
    """Every response of the six languages, measured as the SMS channel sends it."""
    from channels.sms import measure

    return {language: measure(language) for language in ["en", "fr", "ar", "fa", "ps", "ur"]}


def test_the_report_measures_every_response_and_every_page_fits(measured):
    from bot.i18n import translations
    from channels.sms import CHANNEL_REPLIES, NOT_ON_SMS

    for language, measures in measured.items():
        keys = {k if isinstance(k, str) else k[0] for k in translations(language)._catalog}
        responses = {k for k in keys if k.startswith("utter_") and not k.endswith(".sms")}
        assert [m.key for m in measures] == sorted(responses - NOT_ON_SMS | set(CHANNEL_REPLIES))
        assert all(1 <= page <= MAX_SEGMENTS for m in measures for page in m.pages), language
        assert all(m.whole <= MAX_SEGMENTS or len(m.pages) > 1 for m in measures), language  # longer: paged


def test_with_the_sample_programmes_no_reply_needs_a_more_page(measured):
    """Arabic-script replies got shorter SMS texts (`<key>.sms`) until each fits one page."""
    paged = {language: [m.key for m in measures if len(m.pages) > 1] for language, measures in measured.items()}
    assert paged == {language: [] for language in measured}


async def test_a_measure_is_the_reply_the_nlg_shapes_for_sms(measured):
    [help_] = [m for m in measured["fa"] if m.key == "utter_help"]
    message = await CatalogNLG().generate("utter_help", tracker("fa", "AF"), "sms")
    assert help_.encoding == "UCS-2" and help_.whole >= segments(message["text"])
    assert len(help_.pages) >= len(message["sms_pages"])


def test_the_report_prints_median_and_worst_per_language():
    from channels.sms import report

    lines = report().splitlines()
    rows = [ROW.match(line) for line in lines[1:]]
    assert all(rows), lines
    assert [r["language"] for r in rows] == ["ar", "en", "fa", "fr", "ps", "ur"]
    assert all(int(r["page_worst"]) <= MAX_SEGMENTS for r in rows)  # worst per message sent
    assert all(float(r["page_median"]) <= float(r["whole_median"]) <= int(r["whole_worst"]) for r in rows)
    by_language = {r["language"]: r for r in rows}
    assert int(by_language["en"]["ucs2"]) < 10 and int(by_language["fa"]["ucs2"]) > 90
    assert all(int(r["pages"]) == 1 and int(r["paged"]) == 0 for r in rows)  # as measured above


def test_the_report_lists_the_costliest_responses_of_each_language(measured):
    from channels.sms import costliest, report

    text = report(worst=3)
    for language, measures in measured.items():
        expected = costliest(measures, 3)
        assert [m.whole for m in expected] == sorted((m.whole for m in measures), reverse=True)[:3]
        block = text.split(f"\n{language}: the 3 costliest responses")[1].split("\n\n")[0].splitlines()[1:]
        assert [line.split() for line in block] == [
            [m.key, str(m.whole), "=", *" + ".join(map(str, m.pages)).split()] for m in expected]


def test_make_sms_report_runs_the_report(capsys):
    import subprocess
    from pathlib import Path

    from channels.sms import main

    root = Path(__file__).parent.parent
    # under `make test` a nested make would print "Entering directory" lines
    dry = subprocess.run(["make", "--no-print-directory", "-n", "sms-report", "WORST=4"], cwd=root,
                         capture_output=True, text=True, check=True)
    assert dry.stdout.splitlines()[-1].endswith("-m channels.sms report --worst 4")
    assert main(["report", "--worst", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("the 1 costliest responses") == 6 and printed.startswith("language  responses")


@pytest.fixture
def catalog_with_sms_text(monkeypatch):
    """The Arabic catalog, in memory, with a full and a short SMS text of `utter_greet`."""
    import io

    from babel.messages.catalog import Catalog
    from babel.messages.mofile import write_mo
    from babel.support import Translations

    from bot import i18n

    catalog = Catalog(locale="ar")
    catalog.add("utter_greet", "مرحبا " + "بك في خدمة العائدين، نحن هنا لمساعدتك. " * 4)
    catalog.add("utter_greet.sms", "مرحبا بك!")
    catalog.add("utter_products", "قروضنا:\n{products:lines=product_line}")
    catalog.add("product_line", "• {name}: فائدة {rate:percent} في السنة")
    catalog.add("product_line.sms", "• {name}: {rate:percent}")
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    real = i18n.translations
    monkeypatch.setattr(i18n, "translations",
                        lambda language: Translations(io.BytesIO(buffer.getvalue())) if language == "ar" else real(language))
    return catalog


@pytest.mark.parametrize("channel, expected", [("sms", "مرحبا بك!"), ("telegram", None), ("whatsapp", None),
                                               ("webchat", None)])
async def test_only_sms_gets_the_shorter_sms_text(catalog_with_sms_text, channel, expected):
    message = await CatalogNLG().generate("utter_greet", tracker("ar"), channel)
    assert message["text"].splitlines()[0] == (expected or catalog_with_sms_text["utter_greet"].string)


async def test_a_language_without_an_sms_text_gets_its_full_text_on_sms(catalog_with_sms_text):
    message = await CatalogNLG().generate("utter_greet", tracker("fr"), "sms")
    assert message["text"] == prefer_gsm7(Renderer("fr").gettext("utter_greet"))


def test_the_report_measures_the_sms_text_the_channel_sends(catalog_with_sms_text):
    from channels.sms import measure

    [greet] = [m for m in measure("ar") if m.key == "utter_greet"]
    assert greet.whole == 1 and greet.pages == [1]


async def test_a_line_the_sms_text_includes_has_its_shorter_sms_text_too(catalog_with_sms_text):
    products = [{"name": "أ", "rate": 10}]
    on_sms = await CatalogNLG().generate("utter_products", tracker("ar"), "sms", products=products)
    on_telegram = await CatalogNLG().generate("utter_products", tracker("ar"), "telegram", products=products)
    assert on_sms["text"].splitlines()[1].startswith("• أ: ") and "في السنة" not in on_sms["text"]
    assert "في السنة" in on_telegram["text"]

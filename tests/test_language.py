"""Detecting the language of free text among the six languages."""
import pytest

from bot.language import detect

ALL = ["en", "fr", "ar", "fa", "ps", "ur"]


@pytest.mark.parametrize(
    "text, language",
    [
        ("I want a loan to open a small shop", "en"),
        ("bonjour je voudrais savoir comment avoir un crédit", "fr"),
        ("بدي قرض لمشروعي الصغير", "ar"),
        ("نحب نعرف كيفاش نخو قرض", "ar"),
        ("3andi mashrou3 w nheb credit", "ar"),
        ("می‌خواهم برای دکانم قرضه بگیرم", "fa"),
        ("salam chetori mikham vam begiram", "fa"),
        ("زه غواړم د خپل دوکان لپاره پور واخلم", "ps"),
        ("مجھے کاروبار کے لیے قرضہ چاہیے", "ur"),
        ("mujhe business ke liye loan chahiye", "ur"),
        # no letter tells them apart: their own frequent words do (langid said Farsi for these)
        ("شلون اقدر اخذ قرض", "ar"),
        ("زه غوارم یو پور واخلم", "ps"),  # Pashto typed on a Farsi keyboard
        ("ستاسو دفتر چیری دی", "ps"),
        ("باید چی کار وکرم", "ps"),
        ("ولی ما وام لازم داریم یعنی کم پول", "fa"),  # یعنی, کم, لازم are Farsi words too
        ("از شنبه الی چهارشنبه باز است؟", "fa"),
    ],
)
def test_detects_the_language(text, language):
    guess = detect(text, ALL)
    assert guess is not None and guess.language == language


def test_short_text_is_not_sure():
    guess = detect("ok", ALL)
    assert guess is None or guess.confidence < 0.8


def test_restricted_to_the_languages_given():
    guess = detect("bonjour je voudrais un crédit", ["en", "ar"])
    assert guess is None or guess.language in ("en", "ar")


@pytest.mark.parametrize("text", ["", "   ", "12345", "!!!", "🙂"])
def test_nothing_to_detect(text):
    assert detect(text, ALL) is None


@pytest.mark.parametrize("text, current, new, allowed", [
    ("نحب ناخذ قرض باش نحل حانوت", "ar", "fa", False),   # Tunisian: langid says Farsi, no Farsi letter
    ("شنو لازم نسوي باش نسجل المشروع", "ar", "fa", False),  # Arabic yeh, no Persian one
    ("می‌خواهم برای دکانم قرضه بگیرم", "ar", "fa", True),  # Persian letters
    ("من قرضه میخواهم", "ar", "fa", True),                # a Persian keyboard's yeh
    ("أريد قرضا صغيرا لمشروعي", "fa", "ar", True),
    ("زه پور غواړم", "ar", "ps", True),
    ("سهار مو پخیر", "ps", "fa", False),                  # Pashto greeting: letters Pashto has too
    ("گپ بزنیم", "ps", "fa", True),                       # گ, where Pashto writes ګ
    ("mujhe loan chahiye", "ur", "en", False),            # Roman Urdu is still Urdu
    ("I want a loan", "ar", "en", False),                 # an explicit choice moves to English
    ("بدي قرض", "en", "ar", True),                        # writing Arabic script is a clear sign
    ("bonjour", "en", "fr", True),
])
def test_a_move_between_arabic_script_languages_needs_letters_of_the_new_one(text, current, new, allowed):
    from bot.language import may_switch

    assert may_switch(text, current, new) is allowed


def test_among_a_tunisian_programmes_languages_tunisian_arabic_is_arabic():
    assert detect("نحب ناخذ قرض باش نحل حانوت", ["ar", "fr", "en"]).language == "ar"

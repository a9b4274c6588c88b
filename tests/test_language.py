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

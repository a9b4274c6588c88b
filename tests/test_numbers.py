"""Numbers, amounts and durations as people type them, in en fr ar fa ps ur."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.numbers import LANGUAGES, find_duration, fold_digits, parse_amount, parse_duration

D = Decimal


@pytest.mark.parametrize(
    "text, expected",
    [
        ("٠١٢٣٤٥٦٧٨٩", "0123456789"),  # Arabic-Indic
        ("۰۱۲۳۴۵۶۷۸۹", "0123456789"),  # Persian
        ("٢٫٥", "2.5"),  # Arabic decimal separator
        ("٢٬٠٠٠", "2,000"),  # Arabic thousands separator
        ("۱۸ ماه", "18 ماه"),
        ("abc 12", "abc 12"),
        ("", ""),
    ],
)
def test_fold_digits(text, expected):
    assert fold_digits(text) == expected


AMOUNTS = [
    # plain digits and separators
    ("2000", "en", "2000"),
    ("2,000", "en", "2000"),
    ("2,000.50", "en", "2000.50"),
    ("2.000", "en", "2.000"),  # "." is the English decimal point
    ("1,00,000", "ur", "100000"),  # Indian grouping
    ("2 000", "en", "2000"),
    ("2.000", "fr", "2000"),  # "." groups thousands in French
    ("2000,50", "fr", "2000.50"),  # decimal comma
    ("2 000", "fr", "2000"),
    ("2\u202f000", "fr", "2000"),  # narrow no-break space, the French group separator
    ("2\u00a0000,50 €", "fr", "2000.50"),
    ("2.000", "ps", "2000"),  # Pashto (Babel) groups with "."
    ("٢٬٠٠٠", "ar", "2000"),
    ("۲٫۵", "fa", "2.5"),
    ("٥٠٠٠", "ar", "5000"),
    ("۵۰۰۰", "fa", "5000"),
    # multipliers
    ("2k", "en", "2000"),
    ("2K", "fr", "2000"),
    ("1.5k", "en", "1500"),
    ("2 thousand", "en", "2000"),
    ("2 mille", "fr", "2000"),
    ("٢ ألف", "ar", "2000"),
    ("5 آلاف", "ar", "5000"),
    ("2 هزار", "fa", "2000"),
    ("2 زره", "ps", "2000"),
    ("2 lakh", "en", "200000"),
    ("2 لاکھ", "ur", "200000"),
    ("2 ہزار", "ur", "2000"),
    ("5 hazar", "ur", "5000"),
    ("1 crore", "ur", "10000000"),
    # number words
    ("two thousand five hundred", "en", "2500"),
    ("a thousand", "en", "1000"),
    ("deux mille cinq cents", "fr", "2500"),
    ("quatre-vingt-dix", "fr", "90"),
    ("mille", "fr", "1000"),
    ("ألفين", "ar", "2000"),
    ("خمسة وعشرون", "ar", "25"),
    ("پنج هزار", "fa", "5000"),
    ("بیست و پنج", "fa", "25"),
    ("پنځه زره", "ps", "5000"),
    ("دو ہزار", "ur", "2000"),
    # currencies around the number
    ("5000 TND", "fr", "5000"),
    ("5000TND", "fr", "5000"),
    ("5000 dinars", "fr", "5000"),
    ("د.ت 5000", "ar", "5000"),
    ("5000 دينار", "ar", "5000"),
    ("5000 افغانی", "fa", "5000"),
    ("۵۰۰۰ افغانۍ", "ps", "5000"),
    ("Rs 5000", "ur", "5000"),
    ("Rs. 5,000/-", "ur", "5000"),
    ("5000 روپے", "ur", "5000"),
    ("€5000", "en", "5000"),
    ("EUR 2,500", "en", "2500"),
    ("about 5000 euros", "en", "5000"),
    # another language's words still read when the user switches language
    ("2 mille", "en", "2000"),
    ("٢ ألف", "fr", "2000"),
]


@pytest.mark.parametrize("text, lang, expected", AMOUNTS)
def test_parse_amount(text, lang, expected):
    assert parse_amount(text, lang) == D(expected)


def test_parse_amount_keeps_the_decimals_typed():
    assert str(parse_amount("2000,50", "fr")) == "2000.50"
    assert str(parse_amount("2k", "en")) == "2000"


@pytest.mark.parametrize(
    "text, lang",
    [
        ("", "en"),
        ("   ", "fr"),
        ("hello", "en"),
        ("beaucoup", "fr"),
        ("-5000", "en"),
        ("5000 6000", "en"),
        ("2000-3000", "en"),
        ("12%", "en"),
        ("18 months", "en"),
        ("k", "en"),
        ("a", "en"),
        ("an", "en"),
        ("2 k k", "en"),
        ("1,2,3", "en"),
        ("شكرا", "ar"),
        ("سلام", "fa"),
        ("x" * 500, "en"),
    ],
)
def test_parse_amount_returns_none_for_nonsense(text, lang):
    assert parse_amount(text, lang) is None


DURATIONS = [
    ("18 months", "en", (18, "months")),
    ("18months", "en", (18, "months")),
    ("eighteen months", "en", (18, "months")),
    ("one year", "en", (12, "months")),
    ("a year", "en", (12, "months")),
    ("2 years", "en", (24, "months")),
    ("1.5 years", "en", (18, "months")),
    ("1 year 6 months", "en", (18, "months")),
    ("26 weeks", "en", (26, "weeks")),
    ("2 weeks and 3 days", "en", (17, "days")),
    ("90 days", "en", (90, "days")),
    ("for 12 months", "en", (12, "months")),
    ("18 mois", "fr", (18, "months")),
    ("un an", "fr", (12, "months")),
    ("deux ans", "fr", (24, "months")),
    ("1,5 an", "fr", (18, "months")),
    ("1 an et 6 mois", "fr", (18, "months")),
    ("douze semaines", "fr", (12, "weeks")),
    ("pendant 6 mois", "fr", (6, "months")),
    ("١٨ شهر", "ar", (18, "months")),
    ("سنة", "ar", (12, "months")),
    ("سنتين", "ar", (24, "months")),
    ("شهرين", "ar", (2, "months")),
    ("ثلاث سنوات", "ar", (36, "months")),
    ("ثمانية عشر شهرا", "ar", (18, "months")),
    ("لمدة 12 شهر", "ar", (12, "months")),
    ("12 chhar", "ar", (12, "months")),
    ("۱۲ ماه", "fa", (12, "months")),
    ("یک سال", "fa", (12, "months")),
    ("یک سال و شش ماه", "fa", (18, "months")),
    ("دوازده ماه", "fa", (12, "months")),
    ("۸ هفته", "fa", (8, "weeks")),
    ("۱۸ میاشتې", "ps", (18, "months")),
    ("یو کال", "ps", (12, "months")),
    ("دوه کاله", "ps", (24, "months")),
    ("دولس میاشتې", "ps", (12, "months")),
    ("12 مہینے", "ur", (12, "months")),
    ("ایک سال", "ur", (12, "months")),
    ("دو سال", "ur", (24, "months")),
    ("بارہ مہینے", "ur", (12, "months")),
    ("18 mahine", "ur", (18, "months")),
    ("1 saal", "ur", (12, "months")),
    ("18 mois", "en", (18, "months")),  # a French answer in an English conversation
]


@pytest.mark.parametrize("text, lang, expected", DURATIONS)
def test_parse_duration(text, lang, expected):
    assert parse_duration(text, lang) == expected


@pytest.mark.parametrize(
    "text, lang",
    [
        ("", "en"),
        ("18", "en"),  # a number without a unit
        ("soon", "en"),
        ("2.5 weeks", "en"),
        ("0 months", "en"),
        ("-3 months", "en"),
        ("1 year 2 weeks", "en"),
        ("5000 TND", "fr"),
        ("2 سنتين", "ar"),
        ("خیلی", "fa"),
        ("months months 3", "en"),
        ("a", "en"),
    ],
)
def test_parse_duration_returns_none_for_nonsense(text, lang):
    assert parse_duration(text, lang) is None


def test_every_language_has_words_for_one_to_twelve_and_the_units():
    from bot.numbers import _lexicon  # the YAML data as the parser reads it

    for lang in LANGUAGES:
        lexicon = _lexicon(lang)
        values = {word.value for word in lexicon.values() if word.kind == "number"}
        assert set(range(1, 13)) <= values, lang
        assert {20, 30, 40, 50} <= values, lang
        units = {word.value for word in lexicon.values() if word.kind == "unit"}
        assert units == {"months", "weeks", "days", "years"}, lang


@pytest.mark.parametrize("text, lang, expected", [
    ("كم سأدفع إذا أخذت قرض 5000 دينار لمدة سنة", "ar", (12, "months")),
    ("how much will i pay for a loan of 3000 over a year", "en", (12, "months")),
    ("i want to borrow 20000 for two years, how much per month", "en", (24, "months")),
    ("je veux emprunter 5000 sur deux ans", "fr", (24, "months")),
    ("اگر ۵۰۰۰۰ افغانی برای یک سال قرض بگیرم چقدر قسط میشه", "fa", (12, "months")),
    ("a loan of 3000 for 1 year 6 months", "en", (18, "months")),  # the longest reading
    ("i want 5000, how much per month", "en", None),   # how often, not how long
    ("combien par mois pour 5000", "fr", None),
    ("how much for 5000", "en", None),                 # a number alone is not a duration
    ("", "en", None),
    # a time gone by is when they came back, not the loan's duration
    ("I came back a year ago and need 3000", "en", None),
    ("came back last year, need 3000", "en", None),
    ("since two years I am home", "en", None),
    ("I came back 2 years ago and want 3000 over 18 months", "en", (18, "months")),
    ("je suis rentré il y a deux ans, je veux 3000", "fr", None),
    ("rentré depuis un an, je veux 2000 sur 2 ans", "fr", (24, "months")),
    ("رجعت من سنتين وأبغى قرض", "ar", None),
    ("رجعت قبل سنة", "ar", None),
    ("رجعت من سنتين، بدي 3000 على سنة", "ar", (12, "months")),  # and 3000 is no count of years
    ("دو سال قبل برگشتم", "fa", None),
    ("دو سال است که برگشتم، ۵۰ هزار برای دو سال", "fa", (24, "months")),
    ("یو کال مخکې راغلم", "ps", None),
    ("ایک سال پہلے واپس آیا", "ur", None),
    ("pichle saal wapas aya, 50 hazar 2 saal ke liye", "ur", (24, "months")),
    ("how much is 20 over a year", "en", (12, "months")),
])
def test_find_duration_in_a_sentence(text, lang, expected):
    assert find_duration(text, lang) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.sampled_from(LANGUAGES + ("xx", "")))
def test_arbitrary_text_never_raises(text, lang):
    amount = parse_amount(text, lang)
    duration = parse_duration(text, lang)
    found = find_duration(text, lang)
    assert found is None or (found[0] > 1 and found[1] in ("months", "weeks", "days"))
    assert amount is None or (isinstance(amount, Decimal) and amount >= 0)
    assert duration is None or (duration[0] > 0 and duration[1] in ("months", "weeks", "days"))
    assert isinstance(fold_digits(text), str)


NUMBERISH = st.sampled_from(
    list("0123456789٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹.,٫٬ -kK%€") + ["mille", "ألف", "lakh", "months", "سال", "و", "et", "a"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(NUMBERISH, max_size=10).map("".join), st.sampled_from(LANGUAGES))
def test_number_like_text_never_raises(text, lang):
    parse_amount(text, lang)
    parse_duration(text, lang)

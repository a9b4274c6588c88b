"""Text normalisation: what the model sees for what people type."""
import pytest

from bot.text import fold_digits, normalize


@pytest.mark.parametrize(
    "typed, seen",
    [
        ("\ufee3\ufeae\ufea3\ufe92\ufe8e", "مرحبا"),  # Arabic presentation forms -> letters
        ("قـــرض", "قرض"),  # tatweel removed
        ("كيف", "کیف"),  # Arabic kaf and yeh -> Persian kaf and yeh
        ("على", "علی"),  # alef maksura -> Persian yeh
        ("٥٠٠٠ دينار", "5000 دینار"),  # Arabic-Indic digits
        ("۱۲ ماه", "12 ماه"),  # Persian digits
        ("  a \t b\n", "a b"),
        ("\u200fسلام\u200e", "سلام"),  # bidi marks dropped
        ("می\u200cخواهم", "می\u200cخواهم"),  # ZWNJ kept
    ],
)
def test_normalize(typed, seen):
    assert normalize(typed) == seen


def test_fold_digits_keeps_separators_readable():
    assert fold_digits("١٢٬٥٠٠٫٥") == "12,500.5"

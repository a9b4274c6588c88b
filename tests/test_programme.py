"""Programme files: the samples are valid, mistakes give clear errors."""
from pathlib import Path

import pytest
import yaml

from bot.programme import ProgrammeError, load_all, load_programme

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "programmes" / "sample-tn.yml"


def test_the_three_samples_load_and_are_marked_as_samples():
    programmes = load_all(str(ROOT / "programmes"))
    assert {p.country for p in programmes.values()} == {"TN", "AF", "PK"}
    assert len({p.currency for p in programmes.values()}) == 3
    assert all(p.data["sample"] for p in programmes.values())


def _broken(tmp_path, change):
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "sample-tn.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(currency="XYZ"), "currency: unknown currency 'XYZ'"),
        (lambda d: d.update(timezone="Mars/Olympus"), "timezone: unknown time zone"),
        (lambda d: d.update(languages=["ar", "xx"]), "languages: 'xx' has no catalog"),
        (lambda d: d.update(default_language="ur"), "default_language: must be one of languages"),
        (lambda d: d["loans"]["products"][0].update(min_amount=99999), "min_amount is larger than max_amount"),
        (lambda d: d["loans"]["products"][0].pop("annual_rate"), "'annual_rate' is a required property"),
        (lambda d: d["offices"][0]["hours"].update(mon="8h-16h"), "offices[0].hours.mon"),
        (lambda d: d["loans"].update(documents=["passport", "selfie"]), "loans.documents[1]"),
        (lambda d: d.update(colour="green"), "Additional properties are not allowed"),
    ],
)
def test_a_mistake_names_the_file_and_the_field(tmp_path, change, message):
    with pytest.raises(ProgrammeError) as error:
        load_programme(_broken(tmp_path, change))
    assert "sample-tn.yml" in str(error.value) and message in str(error.value)


def test_a_file_that_is_not_yaml(tmp_path):
    path = tmp_path / "x.yml"
    path.write_text("id: [unclosed", encoding="utf-8")
    with pytest.raises(ProgrammeError, match="cannot read it"):
        load_programme(path)


@pytest.mark.parametrize("country, key, fee", [("AF", "utter_faq/loan_late_payment_no_fee", None),
                                               ("TN", "utter_faq/loan_late_payment", 2)])
def test_the_late_payment_answer_mentions_a_fee_only_where_there_is_one(country, key, fee):
    from bot import faq
    from bot import programme as programmes

    answered, facts = faq.answer("loan_late_payment", programmes.for_country(country))
    assert answered == key and facts.get("late_fee") == fee

"""Reading a follow-up question in the light of the previous answer (bot/follow_ups.py)."""
import pytest

from bot import faq, follow_ups


@pytest.mark.parametrize("ranking, previous, understood, expected", [
    ([("loan_apply", .85), ("grant_apply", .14)], "grant_amount", True, "grant_apply"),
    ([("loan_apply", .85), ("grant_apply", .14)], "loan_interest", True, "loan_apply"),
    ([("loan_apply", .85), ("grant_apply", .14)], None, True, "loan_apply"),
    ([("loan_apply", .85), ("grant_apply", .04)], "grant_amount", True, "loan_apply"),  # not a close second
    ([("registration_documents", .99), ("loan_documents", .001)], "loan_apply", True, "registration_documents"),
    ([("registration_documents", .48), ("loan_documents", .45)], "loan_apply", True, "loan_documents"),
    ([("loan_apply", .6), ("grant_apply", .3)], "admin_training", True, "loan_apply"),  # no apply in admin
    ([("admin_training", .6), ("grant_apply", .3)], "grant_amount", True, "admin_training"),  # not a group
    # not understood: only the context answers, and only with a fair guess
    ([("registration_cost", .2), ("grant_amount", .2), ("loan_amounts", .19)], "grant_vs_loan", False,
     "grant_amount"),
    ([("registration_cost", .2), ("grant_amount", .05)], "grant_vs_loan", False, None),
    ([("registration_cost", .2)], "grant_vs_loan", False, None),
    ([], "grant_amount", True, None),
])
def test_in_context(ranking, previous, understood, expected):
    assert follow_ups.in_context(ranking, previous, understood) == expected


@pytest.mark.parametrize("response, topic", [
    ("utter_faq/grant_amount", "grant_amount"),
    ("utter_faq/loan_late_payment_no_fee", "loan_late_payment"),
    ("utter_faq/grant_vs_loan", "grant_vs_loan"),
    ("utter_greet", None),
    (None, None),
])
def test_topic_of_response(response, topic):
    assert follow_ups.topic_of_response(response) == topic


def test_every_topic_in_the_groups_exists_and_is_in_its_area():
    for name, group in follow_ups.groups().items():
        assert len(group) >= 2, name
        for area, topics in group.items():
            for topic in topics:
                assert topic in faq.TOPICS, (name, topic)
                assert follow_ups.area_of(topic) == area, (name, topic)

"""A new session carries each slot's last value once, not the old session's every SlotSet."""
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.session import ActionSessionStart


def tracker_with(slots: dict, events: list) -> Tracker:
    return Tracker("+21650000001", slots, {}, events, False, None, {}, "action_listen")


def test_only_the_last_value_of_each_slot_is_carried_over():
    old_session = [{"event": "slot", "name": "language", "value": language} for language in ["en", "fr"] * 200]
    slots = {"language": "fr", "country": "TN", "loan_amount": None, "requested_slot": "loan_term",
             "fallback_count": 1.0}
    events = ActionSessionStart().run(CollectingDispatcher(), tracker_with(slots, old_session),
                                      {"session_config": {"carry_over_slots_to_new_session": True}})
    assert events[0]["event"] == "session_started"
    assert (events[-1]["event"], events[-1]["name"]) == ("action", "action_listen")
    assert [(e["name"], e["value"]) for e in events[1:-1]] == [("country", "TN"), ("language", "fr")]


def test_nothing_is_carried_when_the_domain_says_so():
    events = ActionSessionStart().run(CollectingDispatcher(), tracker_with({"language": "fr"}, []),
                                      {"session_config": {"carry_over_slots_to_new_session": False}})
    assert [e["event"] for e in events] == ["session_started", "action"]

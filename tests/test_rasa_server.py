"""The Rasa launcher checks the action server's answers as Rasa does, with a schema compiled once."""
import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import Event
from rasa.utils.endpoints import EndpointConfig

from bot import rasa_server

ACTION = RemoteAction("action_faq", EndpointConfig("http://127.0.0.1:5055/webhook"))
WELL_FORMED = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "language", "value": "fr"}],
     "responses": [{"response": "utter_greet", "buttons": [{"title": "1", "payload": "/help"}]}]},
]
MALFORMED = [
    {"events": "not a list", "responses": []},
    {"events": [{"name": "no event type"}], "responses": []},
    {"events": [], "responses": "not a list"},
]


@pytest.mark.parametrize("result", WELL_FORMED)
def test_a_well_formed_answer_passes_both_checks(result):
    assert rasa_server._rasa_validate_action_result(ACTION, result) is True
    assert rasa_server.validate_action_result(ACTION, result) is True


@pytest.mark.parametrize("result", MALFORMED)
def test_a_malformed_answer_gets_rasas_own_error(result):
    with pytest.raises(jsonschema.ValidationError) as rasas:
        rasa_server._rasa_validate_action_result(ACTION, result)
    with pytest.raises(jsonschema.ValidationError) as ours:
        rasa_server.validate_action_result(ACTION, result)
    assert ours.value.message == rasas.value.message and "Action server response" in ours.value.message


def test_the_schema_is_checked_once_per_process():
    rasa_server.action_result_validator.cache_clear()
    for result in WELL_FORMED * 10:
        rasa_server.validate_action_result(ACTION, result)
    assert rasa_server.action_result_validator.cache_info().misses == 1


def test_install_replaces_rasas_check(monkeypatch):
    monkeypatch.setattr(RemoteAction, "_validate_action_result", rasa_server._rasa_validate_action_result)
    monkeypatch.setattr(Event, "resolve_by_type", Event.resolve_by_type)
    rasa_server.install()
    assert RemoteAction._validate_action_result is rasa_server.validate_action_result
    assert Event.resolve_by_type is rasa_server.resolve_event_type


@pytest.mark.parametrize("type_name", ["user", "bot", "slot", "action", "session_started", "active_loop",
                                       "followup", "reminder", "cancel_reminder", "restart", "rewind"])
def test_events_resolve_to_the_class_rasas_walk_finds(type_name):
    assert rasa_server.resolve_event_type(type_name) is rasa_server._rasa_resolve_event_type(type_name)


def test_unknown_event_names_behave_as_in_rasa():
    assert rasa_server.resolve_event_type("topic") is None
    assert rasa_server.resolve_event_type("nonsense", default=Event) is Event
    with pytest.raises(ValueError):
        rasa_server.resolve_event_type("nonsense")


def test_installed_events_deserialise_as_before(monkeypatch):
    monkeypatch.setattr(Event, "resolve_by_type", Event.resolve_by_type)
    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction._validate_action_result)
    stored = [{"event": "user", "text": "salam", "parse_data": {"intent": {"name": "greet"}}},
              {"event": "slot", "name": "language", "value": "fa"}, {"event": "action", "name": "action_listen"}]
    before = [Event.from_parameters(dict(e)) for e in stored]
    rasa_server.install()
    assert [Event.from_parameters(dict(e)) for e in stored] == before

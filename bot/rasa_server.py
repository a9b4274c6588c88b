"""`python -m bot.rasa_server run ...`: Rasa's own command line, with two lookups Rasa 3.6 repeats
on every message done once per process instead (profiled with py-spy under `make bench`):

- every answer of the action server is checked with `jsonschema.validate`, which first checks the
  schema itself against its meta-schema: over a third of the Rasa server's time. The schema is
  now compiled once; the check on the answer stays the same.
- every stored event is turned back into its class by walking all subclasses of `Event`: about a
  tenth of the time. The classes are now looked up by name in a table built once.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, Optional, Text

import jsonschema
from jsonschema import exceptions
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import Event
from rasa.shared.utils.common import all_subclasses

_rasa_validate_action_result = RemoteAction._validate_action_result
_rasa_resolve_event_type = Event.resolve_by_type


@lru_cache(maxsize=None)
def action_result_validator() -> jsonschema.protocols.Validator:
    """A validator for the action server's answers, built and checked once per process."""
    schema = RemoteAction.action_response_format_spec()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
    """True for a well-formed answer; otherwise Rasa's own check raises its own error."""
    if exceptions.best_match(action_result_validator().iter_errors(result)) is None:
        return True
    return _rasa_validate_action_result(self, result)


@lru_cache(maxsize=None)
def event_classes() -> Dict[Text, type]:
    """Each event type name and its class, the first one Rasa's own walk would find."""
    classes: Dict[Text, type] = {}
    for cls in all_subclasses(Event):
        classes.setdefault(cls.type_name, cls)
    return classes


def resolve_event_type(type_name: Text, default: Optional[type] = None) -> Optional[type]:
    """The event class named `type_name`; names the table lacks go to Rasa's own walk."""
    return event_classes().get(type_name) or _rasa_resolve_event_type(type_name, default)


def install() -> None:
    """Makes Rasa use the compiled validator and the event table in this process."""
    RemoteAction._validate_action_result = validate_action_result
    Event.resolve_by_type = staticmethod(resolve_event_type)


def main() -> None:
    """Runs Rasa's command line (`sys.argv`) with both speed-ups installed."""
    install()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()

"""`python -m bot.rasa_server run ...`: Rasa's own command line, with the action server's answers
checked against a schema compiled once instead of once per action.

Rasa 3.6 checks every answer of the action server with `jsonschema.validate`, which first checks
the schema itself against its meta-schema: on two cores that was over a third of the Rasa
server's time (`make bench`, profiled with py-spy). The check on the answer stays the same.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, Text

import jsonschema
from jsonschema import exceptions
from rasa.core.actions.action import RemoteAction

_rasa_validate_action_result = RemoteAction._validate_action_result


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


def install() -> None:
    """Makes Rasa use the compiled validator in this process."""
    RemoteAction._validate_action_result = validate_action_result


def main() -> None:
    """Runs Rasa's command line (`sys.argv`) with the compiled validator installed."""
    install()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()

"""A pipeline component that turns a sensitive message into a request for an advisor."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot import sensitive
from bot.nlu.normalizer import ORIGINAL_TEXT

SENSITIVE = "sensitive"
INTENT_NAME = "request_advisor"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class SensitiveTopics(GraphComponent):
    """When a message contains a phrase of `bot/data/sensitive/`, its intent becomes
    `request_advisor` and the parse result says `sensitive: true`, whatever the model predicted.
    Put it last in the pipeline."""

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "SensitiveTopics":
        """Builds the component (its phrases are read once, from the data folder)."""
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        """Marks sensitive messages."""
        for message in messages:
            text = message.get(ORIGINAL_TEXT) or message.get(TEXT) or ""
            if not text or text.startswith("/") or sensitive.match(text) is None:
                continue
            ranking = [r for r in (message.get(INTENT_RANKING_KEY) or []) if r.get("name") != INTENT_NAME]
            message.set(INTENT, {"name": INTENT_NAME, "confidence": 1.0}, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [{"name": INTENT_NAME, "confidence": 1.0}] + ranking, add_to_output=True)
            message.set(SENSITIVE, True, add_to_output=True)
        return messages

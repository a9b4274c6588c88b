"""A pipeline component that normalises message text before tokenisation."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.text import normalize

ORIGINAL_TEXT = "original_text"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class TextNormalizer(GraphComponent):
    """Rewrites each message's text with `bot.text.normalize`.

    The event keeps the original text; the parse result carries it too as `original_text`.
    """

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "TextNormalizer":
        """Builds the component (it has no state)."""
        return cls()

    @staticmethod
    def _normalize(message: Message, keep_original: bool = False) -> None:
        text: Optional[Text] = message.get(TEXT)
        if text and not text.startswith("/"):
            if keep_original:
                message.set(ORIGINAL_TEXT, text, add_to_output=True)
            message.set(TEXT, normalize(text))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Normalises every training example."""
        for message in training_data.training_examples:
            self._normalize(message)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Normalises incoming messages."""
        for message in messages:
            self._normalize(message, keep_original=True)
        return messages

"""One linear model for every label: the intents and the `faq/<topic>` questions.

A logistic regression over TF-IDF character and word n-grams of the normalised text learns
all labels of `labels.yml` at once (an `faq/<topic>` question is its own class). The most
likely label decides. It is reported the way Rasa's pipeline expects: the intent (a retrieval
intent is as confident as its most likely topic) and, for the retrieval intent, a response
selector result with the topic's `intent_response_key`, like Rasa's ResponseSelector. It trains
in about two minutes on 2 cores.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Dict, List, Optional, Text

import joblib
import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_union

logger = logging.getLogger(__name__)
RETRIEVAL_SEPARATOR = "/"
MODEL_FILE = "labels.joblib"
# what a greeting followed by more words can mean besides a greeting; not `help` or `forget_me`:
# "hello, I am new here" is a greeting, and thanks "for the information" is not "delete my data"
REQUESTS = ("calculate_repayment", "request_advisor", "set_reminder", "stop_reminders")


def build_pipeline(config: Dict[Text, Any]) -> Pipeline:
    """The untrained model: TF-IDF n-grams into a class-balanced logistic regression."""
    features = make_union(
        TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(config["char_ngrams"]), sublinear_tf=True),
        TfidfVectorizer(analyzer="word", ngram_range=tuple(config["word_ngrams"]), sublinear_tf=True,
                        token_pattern=r"(?u)\b\w+\b"),
    )
    model = LogisticRegression(C=config["C"], max_iter=config["max_iter"], class_weight="balanced",
                               random_state=config["random_state"])
    return Pipeline([("features", features), ("model", model)])


def for_single_messages(pipeline: Optional[Pipeline]) -> Optional[Pipeline]:
    """The same model, laid out for scoring a message or a few at a time.

    The regression scores with `features @ coef_.T`; with `coef_` stored row by row, scipy copies
    the whole weight matrix (labels x features) on every call, two thirds of a parse. Stored
    column by column, `coef_.T` is already laid out as scipy wants it; the scores are the same.
    """
    if pipeline is not None and hasattr(pipeline[-1], "coef_"):
        pipeline[-1].coef_ = np.asfortranarray(pipeline[-1].coef_)
    return pipeline


def is_request(label: Text) -> bool:
    """Whether a label asks the assistant for something: an FAQ topic or a request intent."""
    return label.startswith("faq" + RETRIEVAL_SEPARATOR) or label in REQUESTS


def label_of(message: Message) -> Optional[Text]:
    """A training example's label: `faq/<topic>` for a retrieval intent, else the intent."""
    return message.get(INTENT_RESPONSE_KEY) or message.get(INTENT)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearLabelClassifier(IntentClassifier, GraphComponent):
    """Intent classifier and response selector in one linear model."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Default settings (override them in config.yml)."""
        return {"C": 30.0, "max_iter": 3000, "char_ngrams": [1, 5], "word_ngrams": [1, 2],
                "random_state": 42, "ranking_length": 10, "question_after_greeting": 0.4}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 pipeline: Optional[Pipeline] = None, responses: Optional[Dict[Text, Any]] = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.pipeline = for_single_messages(pipeline)
        self.responses = responses or {}

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "LinearLabelClassifier":
        """An untrained classifier."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Fits the model on every example that has a label."""
        examples = [m for m in training_data.intent_examples if m.get(TEXT) and label_of(m)]
        if not examples:
            return self._resource
        self.pipeline = build_pipeline(self.config)
        self.pipeline.fit([m.get(TEXT) for m in examples], [label_of(m) for m in examples])
        for_single_messages(self.pipeline)
        self.responses = dict(training_data.responses)
        with self._model_storage.write_to(self._resource) as folder:
            joblib.dump({"pipeline": self.pipeline, "responses": self.responses}, folder / MODEL_FILE)
        return self._resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "LinearLabelClassifier":
        """The trained classifier, or an untrained one when nothing was stored."""
        try:
            with model_storage.read_from(resource) as folder:
                stored = joblib.load(folder / MODEL_FILE)
            return cls(config, model_storage, resource, stored["pipeline"], stored["responses"])
        except (ValueError, FileNotFoundError, KeyError):
            logger.debug("no trained label classifier found; it predicts nothing")
            return cls(config, model_storage, resource)

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets the intent, its ranking and the response selector result on each message."""
        if self.pipeline is None:
            return messages
        texts = [m.get(TEXT) or "" for m in messages]
        probabilities = self.pipeline.predict_proba(texts)
        labels = list(self.pipeline.classes_)
        # a button payload ("/choose_country{...}") is annotated too: the components after this one
        # expect an intent, and Rasa's RegexMessageHandler replaces it at the end of the graph
        for message, text, row in zip(messages, texts, probabilities):
            self._annotate(message, labels, self._question_after_greeting(text, labels, row))
        return messages

    def _question_after_greeting(self, text: Text, labels: List[Text], row: np.ndarray) -> np.ndarray:
        """For "salam, how do I get a loan?": when the best label is a greeting, the text without
        its first one to three words is scored again, and an FAQ topic or a request found there
        with at least `question_after_greeting` probability is what the message means. The rest
        must keep three words: "salam, how are you" stays a greeting. Thanks are left alone:
        what follows them is what they thank for ("thanks for the loan information")."""
        if labels[int(row.argmax())] != "greet" or text.startswith("/"):
            return row
        words = text.split()
        starts = [start for start in range(1, 4) if sum(any(c.isalpha() for c in w) for w in words[start:]) >= 3]
        if not starts:
            return row
        least = self.config["question_after_greeting"]
        found = [rest for rest in self.pipeline.predict_proba([" ".join(words[start:]) for start in starts])
                 if is_request(labels[int(rest.argmax())]) and rest.max() >= least]
        return max(found, key=lambda rest: rest.max()) if found else row

    def _annotate(self, message: Message, labels: List[Text], row: np.ndarray) -> None:
        intents: Dict[Text, float] = defaultdict(float)
        topics: Dict[Text, Dict[Text, float]] = defaultdict(dict)
        for label, probability in zip(labels, row):
            intent, _, topic = label.partition(RETRIEVAL_SEPARATOR)
            # an intent is as likely as its most likely label: summing a retrieval intent's 23 topics
            # would make any unknown text look like a confident `faq`
            intents[intent] = max(intents[intent], float(probability))
            if topic:
                topics[intent][label] = float(probability)
        ranking = sorted(({"name": k, "confidence": v} for k, v in intents.items()),
                         key=lambda r: -r["confidence"])
        message.set(INTENT, ranking[0], add_to_output=True)
        message.set("intent_ranking", ranking[: self.config["ranking_length"]], add_to_output=True)
        selector: Dict[Text, Any] = {"all_retrieval_intents": sorted(topics)}
        for intent, scores in topics.items():
            ranked = sorted(({"intent_response_key": k, "confidence": v} for k, v in scores.items()),
                            key=lambda r: -r["confidence"])
            best = ranked[0]["intent_response_key"]
            template = f"utter_{best}"
            selector[intent] = {
                "response": {"responses": self.responses.get(template, []), "confidence": ranked[0]["confidence"],
                             "intent_response_key": best, "utter_action": template},
                "ranking": ranked[: self.config["ranking_length"]],
            }
        message.set("response_selector", selector, add_to_output=True)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Nothing to add to training data."""
        return training_data

"""The linear label classifier reports intents and FAQ topics the way Rasa's pipeline expects."""
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.classifier import LinearLabelClassifier

EXAMPLES = {
    "greet": ["hello", "hi there", "good morning", "salam", "hey"],
    "goodbye": ["bye", "see you later", "goodbye friend", "ciao", "talk later"],
    "faq/loan_interest": ["what is the interest rate", "how much interest", "interest on the loan",
                          "loan rate please", "what fees and interest"],
    "faq/grant_amount": ["how much is the grant", "grant amount", "is the grant cash",
                         "how big is the grant", "grant money how much"],
}


def message_for(text: str, label: str) -> Message:
    intent, _, topic = label.partition("/")
    data = {"text": text, "intent": intent}
    if topic:
        data["intent_response_key"] = label
    return Message(data=data)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    storage = LocalModelStorage(tmp_path_factory.mktemp("storage"))
    resource = Resource("labels")
    context = ExecutionContext(GraphSchema({}), "test")
    classifier = LinearLabelClassifier.create({}, storage, resource, context)
    examples = [message_for(t, label) for label, texts in EXAMPLES.items() for t in texts]
    classifier.train(TrainingData(training_examples=examples,
                                  responses={"utter_faq/loan_interest": [{"text": "rate"}]}))
    return LinearLabelClassifier.load({}, storage, resource, context)


def parse(classifier: LinearLabelClassifier, text: str) -> Message:
    message = Message(data={"text": text})
    classifier.process([message])
    return message


@pytest.mark.parametrize("text, intent, topic", [
    ("hello good morning", "greet", None),
    ("bye see you", "goodbye", None),
    ("what interest rate", "faq", "faq/loan_interest"),
    ("grant how much money", "faq", "faq/grant_amount"),
])
def test_the_most_likely_label_decides_intent_and_topic(trained, text, intent, topic):
    message = parse(trained, text)
    assert message.get("intent")["name"] == intent
    if topic:
        response = message.get("response_selector")["faq"]["response"]
        assert response["intent_response_key"] == topic
        assert response["utter_action"] == f"utter_{topic}"


def test_an_intent_is_as_confident_as_its_best_label_not_the_sum_of_its_topics(trained):
    message = parse(trained, "zxqv blorp")
    faq = next(r for r in message.get("intent_ranking") if r["name"] == "faq")
    topics = message.get("response_selector")["faq"]["ranking"]
    assert faq["confidence"] == pytest.approx(max(t["confidence"] for t in topics))
    assert faq["confidence"] < sum(t["confidence"] for t in topics)


def test_a_button_payload_still_gets_an_intent_for_the_components_after_it(trained):
    message = parse(trained, '/choose_language{"language":"fr"}')
    assert message.get("intent")["name"] in {"greet", "goodbye", "faq"}
    assert message.get("intent_ranking")


def test_an_untrained_classifier_leaves_messages_alone(tmp_path):
    storage = LocalModelStorage(tmp_path)
    classifier = LinearLabelClassifier.load({}, storage, Resource("missing"), ExecutionContext(GraphSchema({}), "t"))
    assert parse(classifier, "hello").get("intent") is None


def test_the_weights_are_laid_out_for_one_message_at_a_time_and_score_the_same(trained):
    import numpy as np

    model = trained.pipeline[-1]
    assert model.coef_.flags["F_CONTIGUOUS"]  # else scipy copies them at every message
    texts = ["hello", "what interest rate", "zxqv"]
    laid_out = trained.pipeline.predict_proba(texts)
    model.coef_ = np.ascontiguousarray(model.coef_)
    try:
        assert np.allclose(laid_out, trained.pipeline.predict_proba(texts))
    finally:
        model.coef_ = np.asfortranarray(model.coef_)


@pytest.mark.parametrize("text, intent, topic", [
    ("hello good morning what interest rate", "faq", "faq/loan_interest"),  # the question after the greeting
    ("hello hi what interest", "faq", "faq/loan_interest"),
    ("hello hi good morning", "greet", None),  # only courtesy
    ("hello good morning bye", "greet", None),  # a courtesy then small talk stays a courtesy
])
def test_a_question_after_a_greeting_is_the_question(trained, text, intent, topic):
    whole = trained.pipeline.predict_proba([text])[0]
    assert trained.pipeline.classes_[whole.argmax()] == "greet"  # the whole message reads as a greeting
    message = parse(trained, text)
    assert message.get("intent")["name"] == intent
    if topic:
        assert message.get("response_selector")["faq"]["response"]["intent_response_key"] == topic

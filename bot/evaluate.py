"""`make eval`: how well the trained model understands the held-out examples, per language.

The held-out split (`bot/heldout/<lang>/`) never enters training. Each example is parsed by
the full NLU pipeline (a fallback counts as a mistake); the predicted label is the intent, or
`faq/<topic>` from the response selector. Prints one line per language (accuracy, macro-F1
over the labels, confusion pairs above 2%) and writes `reports/eval.json`.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

import yaml
from sklearn.metrics import accuracy_score, f1_score

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "assistant.tar.gz"
REPORT = ROOT / "reports" / "eval.json"
CONFUSION_SHARE = 0.02
TARGET_F1 = 0.95


def heldout_examples() -> Dict[str, List[Tuple[str, str]]]:
    """(text, label) pairs of the held-out split, per language."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    examples: Dict[str, List[Tuple[str, str]]] = defaultdict(list)
    for folder in sorted((ROOT / "bot" / "heldout").iterdir()):
        for path in sorted(folder.glob("*.yml")):
            data = RasaYAMLReader().reads(path.read_text(encoding="utf-8"))
            for message in data.intent_examples:
                label = message.get("intent_response_key") or message.get("intent")
                examples[folder.name].append((message.get("text"), label))
    return examples


def predicted_label(parse: dict) -> str:
    """The label a parse result stands for: `faq/<topic>` for the retrieval intent."""
    intent = (parse.get("intent") or {}).get("name")
    if intent == "faq" and (parse.get("intent") or {}).get("full_retrieval_intent_name"):
        return parse["intent"]["full_retrieval_intent_name"]
    if intent == "faq":
        key = (((parse.get("response_selector") or {}).get("faq") or {}).get("response") or {}).get(
            "intent_response_key")
        return key or "faq"
    return intent or "none"


def score(pairs: List[Tuple[str, str]]) -> dict:
    """Accuracy, macro-F1 and confusion pairs of (true, predicted) labels."""
    truth = [t for t, _ in pairs]
    guess = [p for _, p in pairs]
    labels = sorted(set(truth))
    confusions = Counter((t, p) for t, p in pairs if t != p)
    return {
        "examples": len(pairs),
        "accuracy": round(accuracy_score(truth, guess), 4),
        "macro_f1": round(f1_score(truth, guess, labels=labels, average="macro", zero_division=0), 4),
        "fallback_share": round(sum(p == "nlu_fallback" for p in guess) / len(pairs), 4),
        "confusions": [
            {"true": t, "predicted": p, "count": n, "share": round(n / len(pairs), 4)}
            for (t, p), n in confusions.most_common() if n / len(pairs) > CONFUSION_SHARE
        ],
    }


def mistake(text: str, label: str, parse: dict) -> dict:
    """One misunderstood held-out example, with what the model preferred before any fallback."""
    ranking = [r for r in parse.get("intent_ranking") or [] if r.get("name") != "nlu_fallback"]
    best = ranking[0] if ranking else {}
    selector = ((parse.get("response_selector") or {}).get("faq") or {}).get("response") or {}
    return {"text": text, "true": label, "predicted": predicted_label(parse),
            "best_intent": best.get("name"), "best_confidence": round(float(best.get("confidence") or 0), 3),
            "faq_topic": selector.get("intent_response_key"),
            "faq_confidence": round(float(selector.get("confidence") or 0), 3)}


async def evaluate(model: Path = MODEL) -> dict:
    """Parses every held-out example with the trained model and scores each language."""
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    logging.getLogger("rasa").setLevel(logging.WARNING)
    # else Rasa's structured log prints every parse, held-out text included
    configure_structlog(logging.WARNING)
    agent = Agent.load(str(model))
    report = {"model": model.name, "target_macro_f1": TARGET_F1, "languages": {}}
    started = time.perf_counter()
    count = 0
    for language, examples in heldout_examples().items():
        pairs, mistakes = [], []
        for text, label in examples:
            parse = await agent.parse_message(text)
            predicted = predicted_label(parse)
            pairs.append((label, predicted))
            if predicted != label:
                mistakes.append(mistake(text, label, parse))
            count += 1
        report["languages"][language] = {**score(pairs), "mistakes": mistakes}
    report["parse_ms_mean"] = round(1000 * (time.perf_counter() - started) / max(count, 1), 1)
    return report


def main() -> int:
    """Runs the evaluation, prints the table, writes the JSON report."""
    model = Path(sys.argv[1]) if len(sys.argv) > 1 else MODEL
    if not model.exists():
        print("no trained model: run `make eval`, which trains it", file=sys.stderr)
        return 2
    report = asyncio.run(evaluate(model))
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"{'lang':<5} {'examples':>8} {'accuracy':>9} {'macro-F1':>9} {'fallback':>9}  confusions above 2%")
    for language, result in report["languages"].items():
        pairs = ", ".join(f"{c['true']}->{c['predicted']} ({c['share']:.0%})" for c in result["confusions"]) or "-"
        print(f"{language:<5} {result['examples']:>8} {result['accuracy']:>9.3f} {result['macro_f1']:>9.3f} "
              f"{result['fallback_share']:>9.1%}  {pairs}")
    print(f"mean parse time {report['parse_ms_mean']} ms; report: {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

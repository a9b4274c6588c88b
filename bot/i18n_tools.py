"""Content tools for programme staff and translators.

    python -m bot.i18n_tools missing fr     what French lacks (keys, placeholders, examples)
    python -m bot.i18n_tools new tr         start a new language from the English catalog
    python -m bot.i18n_tools sync-domain    refresh the English defaults in bot/domain/responses.yml
"""
from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List

import yaml
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from bot.i18n import LOCALES, ROOT, SMS_VARIANT, placeholders

MIN_TRAINING = 20
MIN_HELDOUT = 5
SOURCE = "en"


def read_catalog(language: str) -> Catalog:
    """The .po catalog of `language`."""
    with (LOCALES / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


def _strings(message) -> List[str]:
    return list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]


def labels() -> List[str]:
    """Every label of `bot/labels.yml` (core intents and `faq/<topic>` keys)."""
    data = yaml.safe_load((ROOT / "bot" / "labels.yml").read_text(encoding="utf-8"))
    return list(data["core"]) + list(data["faq"])


def count_examples(folder: Path) -> Counter:
    """Examples per label in the Rasa NLU YAML files of `folder`."""
    counts: Counter = Counter()
    for path in sorted(folder.glob("*.yml")):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            if "intent" in block:
                counts[block["intent"]] += sum(1 for line in block["examples"].splitlines() if line.strip().startswith("- "))
    return counts


def _comparable(names: List[str], plural: bool) -> List[str]:
    # a plural form may leave the count out ("one payment" rather than "1 payment")
    return [n for n in names if not (plural and n.split(":")[0] == "count")]


def catalog_problems(language: str) -> List[str]:
    """Keys missing or untranslated in `language`, and placeholders that differ from English."""
    source, target = read_catalog(SOURCE), read_catalog(language)
    problems = []
    for message in source:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        other = target.get(key)
        if other is None or not all(_strings(other)):
            problems.append(f"catalog: {key} is not translated")
            continue
        wanted = _comparable(placeholders(_strings(message)[-1]), message.pluralizable)
        for text in _strings(other):
            found = _comparable(placeholders(text), message.pluralizable)
            if found != wanted:
                problems.append(f"catalog: {key} has placeholders {found}, English has {wanted}")
                break
    return problems + sms_text_problems(source, target)


def _names(text: str) -> set:
    return {placeholder.split(":")[0] for placeholder in placeholders(text)}


def sms_text_problems(source: Catalog, target: Catalog) -> List[str]:
    """Shorter SMS texts (`<key>.sms`) of a key English does not have, or with a placeholder
    the full text does not fill (an SMS text may leave some out)."""
    problems = []
    suffix = "." + SMS_VARIANT
    for message in target:
        key = message.id if isinstance(message.id, str) else (message.id or [""])[0]
        if not key.endswith(suffix):
            continue
        full = source.get(key[: -len(suffix)])
        if full is None:
            problems.append(f"catalog: {key} is the SMS text of a key English does not have")
            continue
        extra = set().union(*map(_names, _strings(message))) - _names(_strings(full)[-1])
        if extra:
            problems.append(f"catalog: {key} has placeholders {sorted(extra)} its full text lacks")
    return problems


def data_problems(language: str) -> List[str]:
    """Labels with too few training or held-out examples in `language`."""
    problems = []
    training = count_examples(ROOT / "bot" / "data" / "nlu" / language)
    heldout = count_examples(ROOT / "bot" / "heldout" / language)
    for label in labels():
        if training[label] < MIN_TRAINING:
            problems.append(f"training: {label} has {training[label]} examples (needs {MIN_TRAINING})")
        if heldout[label] < MIN_HELDOUT:
            problems.append(f"held-out: {label} has {heldout[label]} examples (needs {MIN_HELDOUT})")
    return problems


def missing(language: str) -> int:
    """Prints what `language` lacks; returns the number of problems."""
    if not (LOCALES / language).exists():
        print(f"{language}: no catalog; start one with `make new-language LANG={language}`")
        return 1
    problems = catalog_problems(language) + data_problems(language)
    for problem in problems:
        print(f"{language}: {problem}")
    print(f"{language}: {'complete' if not problems else f'{len(problems)} things missing'}")
    return len(problems)


def new_language(language: str) -> None:
    """Creates an empty catalog (every English key, right plural forms) and empty data files."""
    if not re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", language):
        raise SystemExit(f"{language!r} is not a language code such as tr or pt_BR")
    target = LOCALES / language / "LC_MESSAGES" / "messages.po"
    if target.exists():
        raise SystemExit(f"{target} exists already")
    source = read_catalog(SOURCE)
    catalog = Catalog(locale=language, project="returnee-assistant", charset="utf-8")
    for message in source:
        if message.id:
            catalog.add(message.id, string=("",) * catalog.num_plurals if message.pluralizable else "",
                        auto_comments=message.auto_comments, user_comments=message.user_comments)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as handle:
        write_po(handle, catalog, width=0, omit_header=False)
    for folder, name in ((ROOT / "bot" / "data" / "nlu" / language, "core.yml"),
                         (ROOT / "bot" / "data" / "nlu" / language, "faq.yml"),
                         (ROOT / "bot" / "heldout" / language, "nlu.yml")):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text('version: "3.1"\nnlu: []\n', encoding="utf-8")
    print(f"created {target.relative_to(ROOT)} and empty training files; now: make missing LANG={language}")


def sync_domain() -> None:
    """Rewrites the English default texts of the domain responses from the English catalog."""
    path = ROOT / "bot" / "domain" / "responses.yml"
    source = read_catalog(SOURCE)
    text = path.read_text(encoding="utf-8")
    head, _, _ = text.partition("responses:")
    data = yaml.safe_load(text)
    for key, variations in data["responses"].items():
        message = source.get(key)
        if message is not None:
            variations[0]["text"] = _strings(message)[-1]
    path.write_text(head + yaml.safe_dump({"responses": data["responses"]}, allow_unicode=True,
                                          sort_keys=False, width=1000), encoding="utf-8")


def main(argv: List[str]) -> int:
    """Command-line entry point."""
    if len(argv) == 2 and argv[0] == "missing":
        return 1 if missing(argv[1]) else 0
    if len(argv) == 2 and argv[0] == "new":
        new_language(argv[1])
        return 0
    if argv == ["sync-domain"]:
        sync_domain()
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

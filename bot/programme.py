"""Programme configuration: the facts that differ from one reintegration programme to another.

Each `programmes/<id>.yml` describes one programme (country, currency, time zone, offices and
hours, loan products, grants, advisors...). Files are validated at start-up against
`bot/programme_schema.yml` and a few rules a schema cannot say; a mistake stops the start
with a message naming the file and the field. `PROGRAMMES_DIR` points elsewhere,
`PROGRAMMES=a,b` keeps only some of them.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
import yaml
from babel.numbers import list_currencies

from bot.i18n import available_languages

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = Path(__file__).with_name("programme_schema.yml")


class ProgrammeError(ValueError):
    """A programme file that cannot be used, with the file and field in the message."""


@dataclass(frozen=True)
class Programme:
    """One programme's validated configuration (`data` is the file's content)."""

    data: Dict[str, Any]
    path: Path

    @property
    def id(self) -> str:
        """The programme's identifier."""
        return self.data["id"]

    @property
    def country(self) -> str:
        """ISO 3166 country code."""
        return self.data["country"]

    @property
    def currency(self) -> str:
        """ISO 4217 currency code."""
        return self.data["currency"]

    @property
    def timezone(self) -> ZoneInfo:
        """The programme's time zone."""
        return ZoneInfo(self.data["timezone"])

    @property
    def languages(self) -> List[str]:
        """Languages the programme offers."""
        return list(self.data["languages"])

    @property
    def default_language(self) -> str:
        """The language used before a user's language is known."""
        return self.data["default_language"]

    @property
    def main_office(self) -> Dict[str, Any]:
        """The first office listed."""
        return self.data["offices"][0]

    def loan_product(self, product_id: str) -> Optional[Dict[str, Any]]:
        """The loan product with that id, or None."""
        return next((p for p in self.data["loans"]["products"] if p["id"] == product_id), None)

    def money(self, value: Any) -> Decimal:
        """A configured amount as Decimal."""
        return Decimal(str(value))


def _location(error: jsonschema.ValidationError) -> str:
    parts = []
    for p in error.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else (("." if parts else "") + str(p)))
    return "".join(parts) or "(top level)"


def _check_rules(data: Dict[str, Any]) -> List[str]:
    problems = []
    if data["currency"] not in list_currencies():
        problems.append(f"currency: unknown currency {data['currency']!r}")
    try:
        ZoneInfo(data["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone: unknown time zone {data['timezone']!r} (use e.g. Asia/Kabul)")
    known = available_languages()
    for lang in data["languages"]:
        if lang not in known:
            problems.append(f"languages: {lang!r} has no catalog in locales/ (have {', '.join(known)})")
    if data["default_language"] not in data["languages"]:
        problems.append("default_language: must be one of languages")
    for i, product in enumerate(data["loans"]["products"]):
        if product["min_amount"] > product["max_amount"]:
            problems.append(f"loans.products[{i}]: min_amount is larger than max_amount")
        if product["min_term"] > product["max_term"]:
            problems.append(f"loans.products[{i}]: min_term is larger than max_term")
    ids = [p["id"] for p in data["loans"]["products"]]
    if len(ids) != len(set(ids)):
        problems.append("loans.products: two products have the same id")
    if data["grants"]["min_amount"] > data["grants"]["max_amount"]:
        problems.append("grants: min_amount is larger than max_amount")
    return problems


def load_programme(path: Path) -> Programme:
    """Reads and validates one programme file; raises ProgrammeError with every problem found."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ProgrammeError(f"{path}: cannot read it: {error}") from None
    if not isinstance(data, dict):
        raise ProgrammeError(f"{path}: must be a mapping of fields")
    schema = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    problems = [f"{_location(e)}: {e.message}" for e in errors]
    if not problems:
        problems = _check_rules(data)
    if problems:
        raise ProgrammeError(f"{path}: " + "; ".join(problems))
    if path.stem != data["id"]:
        raise ProgrammeError(f"{path}: id {data['id']!r} must match the file name")
    return Programme(data=data, path=path)


def programmes_dir() -> Path:
    """The folder programme files are read from."""
    return Path(os.environ.get("PROGRAMMES_DIR") or ROOT / "programmes")


@lru_cache(maxsize=None)
def load_all(directory: Optional[str] = None) -> Dict[str, Programme]:
    """Every active programme by id (all files of the folder, or those named in PROGRAMMES)."""
    folder = Path(directory) if directory else programmes_dir()
    wanted = [p.strip() for p in os.environ.get("PROGRAMMES", "").split(",") if p.strip()]
    paths = sorted(folder.glob("*.yml"))
    if wanted:
        paths = [p for p in paths if p.stem in wanted]
        missing = set(wanted) - {p.stem for p in paths}
        if missing:
            raise ProgrammeError(f"PROGRAMMES names {', '.join(sorted(missing))}, not found in {folder}")
    if not paths:
        raise ProgrammeError(f"no programme file in {folder}")
    programmes = [load_programme(p) for p in paths]
    return {p.id: p for p in programmes}


def for_country(country: Optional[str]) -> Optional[Programme]:
    """The programme serving `country`, or the only programme when there is just one."""
    programmes = load_all()
    if len(programmes) == 1:
        return next(iter(programmes.values()))
    return next((p for p in programmes.values() if p.country == country), None)


def default() -> Programme:
    """The programme used when the user's country is not known (`DEFAULT_PROGRAMME` or the first)."""
    programmes = load_all()
    wanted = os.environ.get("DEFAULT_PROGRAMME")
    if wanted and wanted in programmes:
        return programmes[wanted]
    return next(iter(programmes.values()))


def countries() -> List[str]:
    """Country codes of the active programmes, in file order."""
    return [p.country for p in load_all().values()]


if __name__ == "__main__":
    try:
        for programme in load_all().values():
            print(f"{programme.path.name}: ok ({programme.country}, {programme.currency}, "
                  f"{' '.join(programme.languages)}){' - SAMPLE' if programme.data.get('sample') else ''}")
    except ProgrammeError as error:
        sys.exit(str(error))

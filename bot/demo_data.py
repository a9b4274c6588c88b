"""A realistic synthetic history for the dashboard: `make demo-data` (`python -m bot.demo_data`).

Writes, in Rasa's own event format (the SQL tracker store's `events` table), months of
conversations of thousands of users on every channel, in every language and programme:
greetings, FAQ questions (the training examples of each language are the user texts),
repayment calculations, reminders, fallbacks, and handoffs to advisors as the bot and the
advisor desk write them (asked for, after two fallbacks in a row, or on a sensitive phrase;
the conversation paused, the advisor's messages, handed back). It also fills the project's
tables those conversations would have filled: profiles, unanswered questions, reminders,
advisors (with contacts the desk recognises), handoff tickets in every state (open, claimed,
released, closed) and their posts in the advisors' Telegram group. Then it builds the
dashboard's aggregates. The sender ids look real (Telegram chat ids, phone numbers): the dashboard must
never show them.

Fast on purpose: one million events load in a few minutes (PostgreSQL `COPY`, SQLite bulk
inserts). It refuses to write into a database that already holds conversations unless
`--replace` is given, which first deletes every conversation and the tables above.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import random
import re
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from bot import storage
from bot.dashboard import models as m
from bot.dashboard.etl import SESSION_GAP
from bot.handoff import hours

ROOT = Path(__file__).resolve().parent.parent
CHANNELS = {"telegram": 0.36, "whatsapp": 0.30, "sms": 0.20, "webchat": 0.14}
PROGRAMMES = {"sample-tn": 0.36, "sample-af": 0.36, "sample-pk": 0.28}
LANGUAGES = {"sample-tn": {"ar": 0.58, "fr": 0.27, "en": 0.15},
             "sample-af": {"fa": 0.55, "ps": 0.35, "en": 0.10},
             "sample-pk": {"ur": 0.70, "ps": 0.15, "en": 0.15}}
PHONE_PREFIX = {"sample-tn": "+2165", "sample-af": "+937", "sample-pk": "+923"}
#: How often a turn in the middle of a conversation has each label (FAQ topics share "faq").
NEXT_LABEL = {"faq": 0.46, "calculate_repayment": 0.09, "request_advisor": 0.05, "nlu_fallback": 0.08,
              "out_of_scope": 0.03, "help": 0.06, "thank": 0.07, "goodbye": 0.05, "affirm": 0.03, "deny": 0.02,
              "bot_challenge": 0.015, "choose_language": 0.01, "stop_reminders": 0.004, "forget_me": 0.003,
              "greet": 0.02, "sensitive": 0.004}
ACTIONS = {"greet": "utter_greet", "goodbye": "utter_goodbye", "thank": "utter_thank", "affirm": "utter_menu",
           "deny": "utter_menu", "bot_challenge": "utter_iamabot", "help": "action_show_menu",
           "choose_language": "action_choose_language", "request_advisor": "action_request_advisor",
           "set_reminder": "action_set_reminders", "stop_reminders": "action_stop_reminders",
           "forget_me": "action_forget_me", "out_of_scope": "action_out_of_scope", "nlu_fallback": "action_fallback",
           "faq": "action_answer_faq"}
#: The response an intent's action utters, where it is not `utter_<intent>`.
RESPONSES = {"nlu_fallback": "utter_fallback", "choose_language": "utter_language_menu",
             "set_reminder": "utter_reminders_set", "stop_reminders": "utter_reminders_stopped",
             "forget_me": "utter_ask_forget_confirm", "affirm": "utter_help", "deny": "utter_help"}
ADVISOR_NAMES = {"sample-tn": ["Amira B.", "Karim M.", "Sonia T."], "sample-af": ["Farid A.", "Mariam S.", "Nasir K."],
                 "sample-pk": ["Ayesha R.", "Bilal H.", "Sana Q."]}
ADVISOR_CHANNELS = ("telegram", "whatsapp", "sms")
#: Each programme's advisors' contacts, in the order of ADVISOR_CHANNELS: a Telegram user id
#: (above the users' ids), then real-looking mobile numbers of the programme's country.
ADVISOR_CONTACTS = {"sample-tn": ("7100000101", "+21620345101", "+21698345102"),
                    "sample-af": ("7100000201", "+93701234201", "+93791234202"),
                    "sample-pk": ("7100000301", "+923001234301", "+923211234302")}
ADVISORS_CHAT = "-1001987654321"  # the advisors' Telegram group (TELEGRAM_ADVISORS_CHAT_ID), a topic per ticket
IDLE_MINUTES = 60  # the desk hands a silent conversation back after this long (HANDOFF_IDLE_MINUTES)
#: How a handoff ends, once an advisor has it.
ENDINGS = {"closed": 0.5, "bye": 0.35, "idle": 0.15}
RESOLUTIONS = {"resolved": 0.72, "referred": 0.14, "no_answer": 0.08, "other": 0.06}
QUICK = ("advisor.check", "advisor.wait")
_MARKUP = re.compile(r"\[([^\]]+)\](?:\{[^}]*\}|\([^)]*\))")


@lru_cache(maxsize=None)
def examples(language: str) -> Dict[str, List[str]]:
    """The training examples of a language by label (`faq/<topic>` for FAQ), without entity markup."""
    found: Dict[str, List[str]] = {}
    for path in sorted((ROOT / "bot" / "data" / "nlu" / language).glob("*.yml")):
        for item in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            if "intent" in item and isinstance(item.get("examples"), str):
                lines = [_MARKUP.sub(r"\1", line[2:].strip()) for line in item["examples"].splitlines()
                         if line.strip().startswith("- ")]
                found.setdefault(item["intent"], []).extend(line for line in lines if line)
    return found


@lru_cache(maxsize=None)
def sensitive_phrases(language: str) -> List[str]:
    """The phrases that send a conversation straight to an advisor, in one language."""
    path = ROOT / "bot" / "data" / "sensitive" / f"{language}.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    return [str(p) for p in (data or {}).get("phrases") or []] or ["cannot repay"]


@lru_cache(maxsize=None)
def rendered(language: str, key: str, **variables: Any) -> str:
    """A catalog text rendered as the desk renders it for the returnee."""
    from bot.i18n import Renderer

    return Renderer(language).render(key, variables)


@lru_cache(maxsize=None)
def bot_text(language: str, key: str) -> str:
    """What the assistant says for a response key (the catalog text, placeholders left as they are)."""
    from bot.i18n import translations

    try:
        text = translations(language).gettext(key)
    except LookupError:
        return key
    return text if text != key else translations("en").gettext(key)


def _pick(rng: random.Random, weights: Dict[str, float]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


@dataclass
class User:
    """One synthetic user."""

    sender_id: str
    channel: str
    programme: str
    country: str
    language: str
    first_day: int
    engagement: float
    knows_country: bool
    opted_out: bool = False
    sessions: List[int] = field(default_factory=list)
    busy_until: float = 0.0  # in a handoff until then: the bot does not answer


@dataclass
class Output:
    """Everything generated besides the events."""

    questions: List[Dict[str, Any]] = field(default_factory=list)
    reminders: List[Dict[str, Any]] = field(default_factory=list)
    tickets: List[Dict[str, Any]] = field(default_factory=list)
    posts: List[Tuple[int, float]] = field(default_factory=list)  # (ticket id, when) in the advisors' group
    calculations: int = 0


class Generator:
    """Builds users, their conversations, and the rows of the project's tables."""

    def __init__(self, users: int, events: int, days: int, seed: int, end: Optional[dt.date] = None) -> None:
        from bot.programme import load_all

        self.rng = random.Random(seed)
        self.n_users, self.n_events, self.days = users, events, days
        self.end = end or dt.datetime.now(dt.timezone.utc).date()
        self.start = self.end - dt.timedelta(days=days - 1)
        self.programmes = load_all()
        self.faq_topics = sorted(k for k in examples("en") if k.startswith("faq/"))
        self.users: List[User] = []
        self.out = Output()
        self.now = time.time()
        end_of_history = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
        self.cutoff = min(self.now, end_of_history.timestamp())  # nothing happens after this moment

    # -- users and when they talk -----------------------------------------------------------

    def make_users(self) -> None:
        """Draws the users: channel, programme, language, first day (more users lately)."""
        rng = self.rng
        for index in range(self.n_users):
            channel, programme = _pick(rng, CHANNELS), _pick(rng, PROGRAMMES)
            language = _pick(rng, LANGUAGES[programme])
            if channel == "telegram":
                sender = str(rng.randrange(100_000_000, 7_000_000_000))
            elif channel == "webchat":
                sender = uuid.UUID(int=rng.getrandbits(128)).hex
            else:
                number = PHONE_PREFIX[programme] + "".join(str(rng.randrange(10)) for _ in range(8))
                sender = f"whatsapp:{number}" if channel == "whatsapp" else number
            first_day = int(self.days * math.sqrt(rng.random()))
            self.users.append(User(sender, channel, programme, self.programmes[programme].country, language,
                                   min(first_day, self.days - 1), rng.lognormvariate(0, 0.8),
                                   rng.random() < 0.85, rng.random() < 0.03))

    def events_per_session(self) -> Tuple[float, float]:
        """The mean number of events of a first session and of a later one, measured on samples."""
        samples = min(3000, max(300, self.n_events // 300))
        probe = Generator(0, 0, self.days, self.rng.randrange(1 << 30), self.end)

        def count(first: bool) -> int:
            user = User("probe", "sms", "sample-tn", "TN", "ar", 0, 1.0, True)
            return sum(1 for _ in probe.conversation(0.0, user, first))

        first = sum(count(True) for _ in range(samples)) / samples
        later = sum(count(False) for _ in range(samples)) / samples
        return first, later

    def plan_sessions(self) -> None:
        """Gives each user a first session, then more to the engaged ones until the target is met."""
        for user in self.users:
            user.sessions.append(user.first_day)
        first, later = self.events_per_session()
        margin = 1.08  # sessions later than now, or while the user is with an advisor, are dropped
        wanted = len(self.users) + max(0, int((self.n_events * margin - len(self.users) * first) / later))
        weights = [u.engagement for u in self.users]
        planned = sum(_session_count(u) for u in self.users)
        while planned < wanted:
            self._more_sessions(wanted - planned, weights)
            before, planned = planned, sum(_session_count(u) for u in self.users)
            if planned == before:
                break

    def _more_sessions(self, extra: int, weights: List[float]) -> None:
        rng = self.rng
        for user in rng.choices(self.users, weights, k=extra):
            if rng.random() < 0.12:
                user.sessions.append(rng.choice(user.sessions))  # a second conversation that day
            elif len(set(user.sessions)) < self.days - user.first_day:
                user.sessions.append(rng.randrange(user.first_day, self.days))

    def sessions(self) -> List[Tuple[float, User, bool]]:
        """Every session as (start time, user, first session?), in time order."""
        rng, found = self.rng, []
        base = dt.datetime.combine(self.start, dt.time(), tzinfo=dt.timezone.utc).timestamp()
        for user in self.users:
            number = 0
            for day, count in sorted(Counter(user.sessions).items()):
                hours = [rng.uniform(6.5, 20.5)] if count == 1 else [rng.uniform(6.5, 10.5), rng.uniform(15.5, 20.5)]
                for hour in hours:
                    start = base + day * 86400 + hour * 3600
                    if start < self.now - 300:
                        found.append((start, user, number == 0))
                        number += 1
        found.sort(key=lambda item: item[0])
        return found

    # -- one conversation -------------------------------------------------------------------

    def conversation(self, start: float, user: User, first: bool) -> Iterator[Tuple]:
        """The events of one session: (sender, type, timestamp, intent, action, data) tuples."""
        rng, clock = self.rng, [start]
        if start < user.busy_until:
            return  # still with an advisor: the user writes to them, the bot stays silent

        def event(kind: str, data: Dict[str, Any], intent: Optional[str] = None, action: Optional[str] = None) -> Tuple:
            clock[0] += rng.uniform(0.05, 0.4)
            data = {"event": kind, "timestamp": clock[0], **data}
            return user.sender_id, kind, clock[0], intent, action, json.dumps(data, ensure_ascii=False)

        def act(name: str, policy: Optional[str] = "RulePolicy") -> Tuple:
            return event("action", {"name": name, "policy": policy, "confidence": 1.0 if policy else None,
                                    "action_text": None, "hide_rule_turn": False}, action=name)

        def slot(name: str, value: Any) -> Tuple:
            return event("slot", {"name": name, "value": value}, action=name)

        def say(key: str, text: Optional[str] = None) -> Tuple:
            return event("bot", {"metadata": {"utter_action": key}, "text": text or bot_text(user.language, key),
                                 "data": {"elements": None, "quick_replies": None, "buttons": None,
                                          "attachment": None, "image": None, "custom": None}})

        yield act("action_session_start", None)
        yield event("session_started", {})
        if not first:
            yield slot("language", user.language)
            if user.knows_country:
                yield slot("country", user.country)
        yield act("action_listen", None)
        labels = self._session_labels(first)
        fallbacks = 0
        for turn, label in enumerate(labels):
            clock[0] += rng.uniform(8, 90)
            text, intent, topic = self._text(user, label)
            data = self._user_data(user, text, intent, topic, clock[0])
            if label == "sensitive":
                data["parse_data"]["sensitive"] = True
            yield event("user", data, intent=intent)
            yield event("user_featurization", {"use_text_for_featurization": False})
            if first and turn == 0:
                yield slot("language", user.language)
                if user.knows_country:
                    yield slot("country", user.country)
            if label == "calculate_repayment":
                fallbacks = 0
                yield from self._calculator(user, act, slot, say, event, clock)
                continue
            yield act(ACTIONS.get(intent, "utter_menu"), rng.choice(["RulePolicy", "TEDPolicy"]))
            if intent in ("nlu_fallback", "out_of_scope"):
                self.out.questions.append({"text": text, "language": user.language,
                                           "reason": "fallback" if intent == "nlu_fallback" else "out_of_scope",
                                           "programme": user.programme if user.knows_country else None,
                                           "ts": clock[0] + 0.2})
            fallbacks = fallbacks + 1 if intent == "nlu_fallback" else 0
            if fallbacks:
                yield slot("fallback_count", fallbacks)
            if fallbacks >= 2 or intent == "request_advisor":
                if fallbacks >= 2:  # the second fallback in a row goes to an advisor (actions/fallback.py)
                    yield act("action_request_advisor", None)
                reason = "sensitive" if label == "sensitive" else "repeated_fallback" if fallbacks else "user_request"
                yield from self._handoff(user, reason, slot, say, event, clock)
                return
            yield say(RESPONSES.get(intent) or f"utter_{topic or intent}")
            yield act("action_listen", None)

    def _session_labels(self, first: bool) -> List[str]:
        rng = self.rng
        labels = ["greet"] if first or rng.random() < 0.4 else []
        for _ in range(max(1, int(rng.expovariate(1 / 3.2)) + 1)):
            previous = labels[-1] if labels else ""
            if previous.startswith("faq/loan_") and rng.random() < 0.3:
                label = "calculate_repayment"
            elif previous == "calculate_repayment" and rng.random() < 0.18:
                label = "request_advisor"
            elif previous == "calculate_repayment" and rng.random() < 0.3:
                label = "set_reminder"
            else:
                label = _pick(rng, NEXT_LABEL)
                if label == "faq":
                    loans = [t for t in self.faq_topics if t.startswith("faq/loan_")]
                    label = rng.choice(loans) if rng.random() < 0.45 else rng.choice(self.faq_topics)
            labels.append(label)
        if rng.random() < 0.3:
            labels.append("thank")
        return labels

    def _text(self, user: User, label: str) -> Tuple[str, str, Optional[str]]:
        pool = examples(user.language)
        if label == "nlu_fallback":
            source = pool.get("out_of_scope") or ["..."]
            text = self.rng.choice(source)
            if self.rng.random() < 0.5:
                text = f"{text.split(' ')[0]} {self.rng.choice(source)}"
            return text, label, None
        if label == "sensitive":
            return self.rng.choice(sensitive_phrases(user.language)), "request_advisor", None
        intent, topic = ("faq", label) if label.startswith("faq/") else (label, None)
        return self.rng.choice(pool.get(label) or pool.get("greet") or ["hello"]), intent, topic

    def _user_data(self, user: User, text: str, intent: str, topic: Optional[str], ts: float) -> Dict[str, Any]:
        confidence = round(self.rng.uniform(0.15, 0.45) if intent == "nlu_fallback" else self.rng.uniform(0.6, 1.0), 4)
        message_id = uuid.UUID(int=self.rng.getrandbits(128)).hex
        parse: Dict[str, Any] = {"intent": {"name": intent, "confidence": confidence}, "entities": [], "text": text,
                                 "message_id": message_id, "metadata": {},
                                 "intent_ranking": [{"name": intent, "confidence": confidence}]}
        if topic:
            parse["response_selector"] = {"all_retrieval_intents": ["faq"], "faq": {
                "response": {"id": None, "responses": [{"text": f"utter_{topic}"}], "confidence": confidence,
                             "intent_response_key": topic, "utter_action": f"utter_{topic}",
                             "template_name": f"utter_{topic}"}, "ranking": []}}
        metadata = {"language_hint": user.language} if user.channel in ("telegram", "webchat") else {}
        return {"metadata": metadata, "text": text, "parse_data": parse, "input_channel": user.channel,
                "message_id": message_id}

    def _calculator(self, user, act, slot, say, event, clock) -> Iterator[Tuple]:
        rng = self.rng
        programme = self.programmes[user.programme]
        product = rng.choice(programme.data["loans"]["products"])
        yield act("loan_form", "RulePolicy")
        yield event("active_loop", {"name": "loan_form"})
        if rng.random() < 0.5:
            yield slot("requested_slot", "loan_term")
            yield say("utter_ask_loan_term")
            yield act("action_listen", None)
            clock[0] += rng.uniform(10, 60)
            if rng.random() < 0.15:
                return
            term_text = str(rng.choice([6, 9, 12, 12, 18, 24]))
            yield event("user", self._user_data(user, term_text, "calculate_repayment", None, clock[0]),
                        intent="calculate_repayment")
            yield act("loan_form", "RulePolicy")
        step = 50 if product["max_amount"] <= 20000 else 5000
        amount = round(rng.triangular(product["min_amount"], product["max_amount"],
                                      product["min_amount"] + (product["max_amount"] - product["min_amount"]) * 0.3)
                       / step) * step
        repayments = rng.randrange(product.get("min_term", 6), product.get("max_term", 24) + 1)
        frequency = product.get("frequency", "months")
        for name in ("loan_product", "loan_amount", "loan_term"):
            yield slot(name, {"loan_product": product["id"], "loan_amount": str(amount),
                              "loan_term": str(repayments)}[name])
        yield slot("requested_slot", None)
        yield event("active_loop", {"name": None})
        yield act("action_calculate_repayment", "RulePolicy")
        for name in ("loan_product", "loan_amount", "loan_term", "loan_frequency"):
            yield slot(name, None)
        disbursed = dt.datetime.fromtimestamp(clock[0], programme.timezone).date()
        yield slot("loan_calculation", {"programme": programme.id, "product": product["id"], "amount": str(amount),
                                        "repayments": repayments, "frequency": frequency,
                                        "disbursed": disbursed.isoformat()})
        yield slot("country", programme.country)
        yield say(f"utter_calc_result_{frequency}")
        yield act("action_listen", None)
        self.out.calculations += 1
        if rng.random() < 0.3:
            self._reminders(user, programme, Decimal(amount), repayments, frequency, disbursed)

    def _reminders(self, user: User, programme, amount: Decimal, repayments: int, frequency: str,
                   disbursed: dt.date) -> None:
        rng, instalment = self.rng, (amount / repayments).quantize(Decimal("0.01"))
        step = dt.timedelta(weeks=1) if frequency == "weeks" else None
        created = dt.datetime.combine(disbursed, dt.time(12), tzinfo=dt.timezone.utc)
        for number in range(1, min(repayments, 12) + 1):
            due = disbursed + step * number if step else _add_months(disbursed, number)
            send_at = dt.datetime.combine(due - dt.timedelta(days=3), dt.time(9), tzinfo=dt.timezone.utc)
            status, sent_at, error, attempts = "pending", None, None, 0
            if user.opted_out:
                status = "cancelled"
            elif send_at.timestamp() < self.now:
                roll = rng.random()
                status = "sent" if roll < 0.95 else "failed" if roll < 0.98 else "cancelled"
                attempts = 1 if status == "sent" else 5 if status == "failed" else 0
                sent_at = send_at + dt.timedelta(seconds=rng.uniform(1, 90)) if status == "sent" else None
                error = "channel error: 400 chat not found" if status == "failed" else None
            self.out.reminders.append({"sender_id": user.sender_id, "channel": user.channel,
                                       "programme": programme.id, "due_date": due, "amount": instalment,
                                       "currency": programme.currency, "send_at": send_at, "status": status,
                                       "attempts": attempts, "sent_at": sent_at, "last_error": error,
                                       "created_at": created})

    def _handoff(self, user: User, reason: str, slot, say, event, clock) -> Iterator[Tuple]:
        """The end of `action_request_advisor` (the wait, the pause), then what the advisor desk
        writes into the conversation: the advisor's messages, the user's answers, the hand-back.
        Records the ticket and its posts in the advisors' group; stops at the cutoff moment."""
        rng = self.rng
        programme = self.programmes[user.programme]
        wait = hours.wait(programme, _utc(clock[0]))
        if reason == "sensitive":
            yield say("utter_handoff_sensitive")
        minutes = int((programme.data.get("advisors") or {}).get("response_minutes") or 30)
        if wait.open_now:
            yield say("utter_handoff_open", rendered(user.language, "utter_handoff_open", minutes=minutes))
        else:
            yield say("utter_handoff_closed", rendered(user.language, "utter_handoff_closed",
                                                       next_open=wait.next_open.isoformat()))
        yield slot("fallback_count", 0)
        yield event("pause", {})
        created = clock[0]
        ticket: Dict[str, Any] = {
            "id": len(self.out.tickets) + 1, "sender_id": user.sender_id, "programme": user.programme,
            "reason": reason, "channel": user.channel, "language": user.language, "country": user.country,
            "status": "open", "created_at": _utc(created), "announced_at": _utc(created + 2)}
        self.out.tickets.append(ticket)
        self.out.posts.append((ticket["id"], created + 2.5))  # the announcement, in the ticket's own topic
        user.busy_until = math.inf  # until the conversation is handed back
        office = created if wait.open_now else wait.next_open.timestamp()
        index = rng.randrange(len(ADVISOR_CHANNELS))
        name = ADVISOR_NAMES[user.programme][index]
        if rng.random() < 0.03:  # asked twice by another way: an advisor closes it without taking it
            closed = office + rng.uniform(1, 30) * 60
            if closed <= self.cutoff:
                ticket.update(status="closed", resolution="duplicate", advisor_index=index, closed_at=_utc(closed))
                clock[0] = closed
                yield from self._hand_back(user, ticket, say, event, clock)
            return
        claimed = office + rng.lognormvariate(2.3, 0.9) * 60
        if claimed > self.cutoff:
            return
        ticket.update(status="claimed", advisor_index=index, advisor=name, claimed_at=_utc(claimed),
                      last_activity_at=_utc(claimed))
        self.out.posts.append((ticket["id"], claimed + 1))
        clock[0] = claimed + rng.uniform(0.3, 4) * 60
        last_user = created
        script = [("advisor", "advisor.greeting")]
        for _ in range(rng.randint(1, 3)):
            script += [("user", None), ("advisor", rng.choice(QUICK))]
        ending = _pick(rng, ENDINGS)
        if ending == "bye":
            script.append(("advisor", "advisor.bye"))
        first_name = name.split()[0]
        last = claimed
        for speaker, key in script:
            if clock[0] > self.cutoff:
                return
            if speaker == "advisor":
                message = rendered(user.language, "utter_handoff_advisor_message", advisor=first_name,
                                   text=rendered(user.language, key, advisor=first_name))
                written = event("bot", {"metadata": {"ticket": ticket["id"], "advisor": first_name}, "text": message,
                                        "data": {"elements": None, "quick_replies": None, "buttons": None,
                                                 "attachment": None, "image": None, "custom": None}})
                yield written
                ticket.setdefault("first_reply_at", _utc(written[2]))
                pause = rng.uniform(0.5, 8)
            else:
                if clock[0] - last_user > SESSION_GAP:  # Rasa starts a new session before the message
                    yield event("action", {"name": "action_session_start", "policy": None, "confidence": None},
                                action="action_session_start")
                    yield event("session_started", {})
                    yield slot("language", user.language)
                label = rng.choice(self.faq_topics) if rng.random() < 0.6 else rng.choice(["thank", "affirm"])
                text, intent, topic = self._text(user, label)
                written = event("user", self._user_data(user, text, intent, topic, clock[0]), intent=intent)
                yield written
                self.out.posts.append((ticket["id"], written[2] + 0.5))  # passed on to the ticket's topic
                last_user = written[2]
                pause = rng.uniform(1, 10)
            last = written[2]
            ticket["last_activity_at"] = _utc(last)
            clock[0] = last + pause * 60
        end = {"closed": last + rng.uniform(1, 20) * 60, "bye": last + 1, "idle": last + IDLE_MINUTES * 60}[ending]
        if end > self.cutoff:
            return
        if ending == "closed":
            ticket.update(status="closed", resolution=_pick(rng, RESOLUTIONS), closed_at=_utc(end))
        else:
            ticket.update(status="released", released_at=_utc(end))
        clock[0] = end
        yield from self._hand_back(user, ticket, say, event, clock)

    def _hand_back(self, user: User, ticket: Dict[str, Any], say, event, clock) -> Iterator[Tuple]:
        """The conversation goes back to the bot (`ConversationResumed`, then `utter_handoff_back`)."""
        yield event("resume", {})
        yield say("utter_handoff_back")
        self.out.posts.append((ticket["id"], clock[0] + 0.5))
        user.busy_until = clock[0]


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc)


def _session_count(user: User) -> int:
    return sum(min(2, n) for n in Counter(user.sessions).values())


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, 28))


# -- loading ------------------------------------------------------------------------------

def _copy_events(engine: Engine, rows: Sequence[Tuple]) -> None:
    if engine.dialect.name == "postgresql":
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        buffer.seek(0)
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                cursor.copy_expert("COPY events (sender_id, type_name, timestamp, intent_name, action_name, data) "
                                   "FROM STDIN WITH (FORMAT csv)", buffer)
            raw.commit()
        finally:
            raw.close()
    else:
        with engine.begin() as db:
            db.exec_driver_sql("INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
                               "VALUES (?, ?, ?, ?, ?, ?)", list(rows))


def _wipe(engine: Engine) -> None:
    inspector = sa.inspect(engine)
    with engine.begin() as db:
        for table in ("events", "profiles", "unanswered_questions", "reminders", "tickets", "ticket_posts", "advisors",
                      *(t.name for t in m.AGGREGATES)):
            if inspector.has_table(table):
                db.execute(sa.text(f"DELETE FROM {table}"))
        db.execute(sa.delete(m.dash_state).where(m.dash_state.c.name == "etl"))


def load(url: Optional[str] = None, users: int = 10_000, events: int = 1_000_000, days: int = 183,
         seed: int = 7, replace: bool = False, refresh: bool = True, quiet: bool = False,
         end: Optional[dt.date] = None) -> Dict[str, Any]:
    """Generates and writes the synthetic history into the database at `url`; returns counts."""
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    started = time.monotonic()
    url = url or storage.database_url()
    storage.upgrade(url)
    engine = storage.engine(url)
    m.events_table().create(engine, checkfirst=True)
    with engine.connect() as db:
        existing = db.execute(sa.text("SELECT 1 FROM events LIMIT 1")).first()
    if existing and not replace:
        raise SystemExit("this database already holds conversations; use --replace to delete them and load "
                         "the demo data instead")
    _wipe(engine)
    generator = Generator(users, events, days, seed, end)
    generator.make_users()
    generator.plan_sessions()
    written, chunk = 0, []
    for start, user, first in generator.sessions():
        chunk.extend(generator.conversation(start, user, first))
        if len(chunk) >= 100_000:
            _copy_events(engine, chunk)
            written += len(chunk)
            chunk = []
            say(f"  {written:>9,} events")
    if chunk:
        _copy_events(engine, chunk)
        written += len(chunk)
    counts = _write_tables(engine, generator)
    counts.update(events=written, users=len(generator.users), calculations=generator.out.calculations)
    say(f"demo data: {written:,} events of {len(generator.users):,} users over {days} days "
        f"({time.monotonic() - started:.0f} s)")
    if refresh:
        from bot.dashboard.etl import Refresher

        began = time.monotonic()
        Refresher(engine).run(lag=0)
        say(f"dashboard aggregates built ({time.monotonic() - began:.0f} s)")
    counts["seconds"] = round(time.monotonic() - started, 1)
    return counts


def _write_tables(engine: Engine, generator: Generator) -> Dict[str, int]:
    from bot.reminders import Reminder

    out, now = generator.out, storage.utcnow()
    profiles = [{"sender_id": u.sender_id, "channel": u.channel, "language": u.language,
                 "country": u.country if u.knows_country else None, "opted_out": u.opted_out,
                 "created_at": dt.datetime.combine(generator.start + dt.timedelta(days=u.first_day), dt.time(8),
                                                   tzinfo=dt.timezone.utc), "updated_at": now}
                for u in generator.users]
    questions = sorted(out.questions, key=lambda q: q["ts"])
    for question in questions:
        question["created_at"] = dt.datetime.fromtimestamp(question.pop("ts"), dt.timezone.utc)
        question["handled"] = question["created_at"] < now - dt.timedelta(days=60) and generator.rng.random() < 0.4
    with engine.begin() as db:
        for table, rows in ((storage.Profile.__table__, profiles), (storage.UnansweredQuestion.__table__, questions),
                            (Reminder.__table__, out.reminders)):
            for start in range(0, len(rows), 5000):
                db.execute(sa.insert(table), rows[start:start + 5000])
        advisor_ids = _write_advisors(db, now)
        tickets = _write_tickets(db, out.tickets, advisor_ids, out.posts)
    return {"profiles": len(profiles), "unanswered": len(questions), "reminders": len(out.reminders),
            "advisors": len(advisor_ids), "tickets": tickets, "ticket_posts": len(out.posts)}


def demo_advisors() -> List[Dict[str, Any]]:
    """The demo advisors: per programme, one on Telegram, one on WhatsApp, one on SMS, each with
    the contact in the form the desk looks advisors up by."""
    from bot.handoff.advisors import normal_contact

    return [{"name": name, "programme": programme, "channel": channel,
             "contact": normal_contact(channel, ADVISOR_CONTACTS[programme][index]),
             "languages": " ".join(LANGUAGES[programme])}
            for programme, names in ADVISOR_NAMES.items()
            for index, (name, channel) in enumerate(zip(names, ADVISOR_CHANNELS))]


def _write_advisors(db, now: dt.datetime) -> Dict[Tuple[str, int], int]:
    """Registers the demo advisors; their ids by (programme, index in ADVISOR_NAMES)."""
    ids = {}
    for advisor in demo_advisors():
        row = db.execute(sa.insert(m.advisors).values(**advisor, active=True, created_at=now, updated_at=now))
        ids[(advisor["programme"], ADVISOR_NAMES[advisor["programme"]].index(advisor["name"]))] = \
            row.inserted_primary_key[0]
    return ids


def _write_tickets(db, tickets: List[Dict[str, Any]], advisor_ids: Dict[Tuple[str, int], int],
                   posts: List[Tuple[int, float]]) -> int:
    """The tickets (numbered as the events that name them), their posts in the advisors' group."""
    from bot.handoff.tickets import Ticket, TicketPost

    rows, blank = [], dict.fromkeys(Ticket.__table__.c.keys())
    for ticket in tickets:
        row = {**blank, **{k: v for k, v in ticket.items() if k != "advisor_index"}}
        if "advisor_index" in ticket:
            row["advisor_id"] = advisor_ids[(ticket["programme"], ticket["advisor_index"])]
        rows.append(row)
    for start in range(0, len(rows), 5000):
        db.execute(sa.insert(Ticket.__table__), rows[start:start + 5000])
    if rows and db.dialect.name == "postgresql":  # the ids were given: move the sequence past them
        db.execute(sa.text("SELECT setval(pg_get_serial_sequence('tickets', 'id'), (SELECT max(id) FROM tickets))"))
    topics = {ticket["id"]: str(9000 + ticket["id"]) for ticket in tickets}
    post_rows = [{"chat_id": ADVISORS_CHAT, "message_id": str(100_000 + number), "ticket_id": ticket_id,
                  "thread_id": topics[ticket_id], "created_at": _utc(ts)}
                 for number, (ticket_id, ts) in enumerate(sorted(posts, key=lambda post: post[1]))]
    for start in range(0, len(post_rows), 5000):
        db.execute(sa.insert(TicketPost.__table__), post_rows[start:start + 5000])
    return len(rows)


def main(argv: Optional[List[str]] = None) -> int:
    """Command line: `python -m bot.demo_data [--users N] [--events N] [--days N] [--replace]`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="database URL (default: DATABASE_URL or var/assistant.db)")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=183)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--replace", action="store_true", help="delete the conversations already there first")
    args = parser.parse_args(argv)
    counts = load(args.url, args.users, args.events, args.days, args.seed, args.replace)
    print(", ".join(f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in counts.items()))
    print("Next: create an account (python -m bot.dashboard users add NAME --role admin), then `make dashboard`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

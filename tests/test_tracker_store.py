"""Our SQL tracker store writes and reads the same rows as Rasa's, only with lighter statements."""
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.tracker_store import PrivacySQLTrackerStore
from tests.conftest import ROOT

DOMAIN = Domain.load(str(ROOT / "bot" / "domain"))
COLUMNS = ("sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")


def conversation(sender: str, turns: int) -> list:
    events = [ActionExecuted("action_session_start", timestamp=1.0), SessionStarted(timestamp=2.0),
              SlotSet("language", "fa", timestamp=2.5), ActionExecuted("action_listen", timestamp=3.0)]
    for turn in range(turns):
        at = 10.0 + turn * 10
        events += [UserUttered("سلام", {"name": "greet", "confidence": 0.9}, timestamp=at),
                   ActionExecuted("utter_greet", timestamp=at + 1), BotUttered("Salam!", timestamp=at + 2),
                   ActionExecuted("action_listen", timestamp=at + 3)]
    return events


def turns(events: list) -> list:
    """The events cut after each `action_listen`: what one message adds."""
    cut, current = [], []
    for event in events:
        current.append(event)
        if isinstance(event, ActionExecuted) and event.action_name == "action_listen":
            cut.append(current)
            current = []
    return cut + ([current] if current else [])


async def save_in_steps(store, sender: str) -> None:
    """Saves a conversation turn by turn, reloading it before each turn as Rasa does, then a
    second session."""
    second = [ActionExecuted("action_session_start", timestamp=100.0), SessionStarted(timestamp=101.0),
              SlotSet("language", "fa", timestamp=101.5), ActionExecuted("action_listen", timestamp=102.0),
              UserUttered("hi", {"name": "greet", "confidence": 1.0}, timestamp=110.0)]
    for turn in turns(conversation(sender, 3) + second):
        tracker = await store.retrieve(sender) or DialogueStateTracker(sender, DOMAIN.slots)
        for event in turn:
            tracker.update(event)
        await store.save(tracker)


def rows(path) -> list:
    with sa.create_engine(f"sqlite:///{path}").connect() as db:
        return [tuple(r) for r in db.execute(sa.text(f"select {', '.join(COLUMNS)} from events order by id"))]


async def test_the_same_rows_as_rasas_store_and_the_same_trackers_back(tmp_path):
    ours = PrivacySQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "ours.db"))
    rasas = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "rasa.db"))
    await save_in_steps(ours, "+93700000001")
    await save_in_steps(rasas, "+93700000001")
    assert rows(tmp_path / "ours.db") == rows(tmp_path / "rasa.db")
    assert len(rows(tmp_path / "ours.db")) == 4 + 3 * 4 + 5  # each event stored once

    for sender_id in ("+93700000001", "nobody"):
        mine, theirs = await ours.retrieve(sender_id), await rasas.retrieve(sender_id)
        assert (mine and mine.current_state()) == (theirs and theirs.current_state())
    latest = await ours.retrieve("+93700000001")
    assert [e.type_name for e in latest.events][:2] == ["session_started", "slot"]  # the latest session only
    full = await ours.retrieve_full_tracker("+93700000001")
    assert full.current_state() == (await rasas.retrieve_full_tracker("+93700000001")).current_state()
    assert len(full.events) == 21

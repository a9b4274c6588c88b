"""A numbered reply ("2", "٢", "۲") picks the button of the latest menu."""
import pytest
from rasa.shared.core.events import BotUttered, UserUttered

from bot.menus import payload_for_reply

MENU = BotUttered("Choose", {"buttons": [{"title": "A", "payload": "/a"}, {"title": "B", "payload": "/b"}]})


@pytest.mark.parametrize(
    "reply, events, payload",
    [
        ("2", [MENU], "/b"),
        ("٢", [MENU], "/b"),
        ("۱", [MENU], "/a"),
        (" 1. ", [MENU], "/a"),
        ("3", [MENU], None),
        ("0", [MENU], None),
        ("2", [MENU, BotUttered("no buttons")], "/b"),
        ("2", [MENU, UserUttered("hello")], None),
        ("2 loans", [MENU], None),
        ("2", [], None),
    ],
)
def test_numbered_reply(reply, events, payload):
    assert payload_for_reply(reply, events) == payload

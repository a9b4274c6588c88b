"""The handoff's parts without a server: office hours, tickets, advisors, sensitive phrases."""
from __future__ import annotations

import datetime as dt
import threading

import pytest

from bot import programme as programmes
from bot import sensitive
from bot.handoff import advisors, hours, tickets
from bot.handoff.__main__ import main as cli

TUNIS = programmes.load_all()["sample-tn"]  # Mon-Thu 08:30-16:30, Fri 08:30-13:00, Africa/Tunis (UTC+1)


@pytest.mark.parametrize("moment, open_now, next_open", [
    ("2026-12-07T09:00:00+00:00", True, None),                        # Monday 10:00 in Tunis
    ("2026-12-07T16:00:00+00:00", False, "2026-12-08T08:30:00+01:00"),  # Monday 17:00: Tuesday morning
    ("2026-12-04T13:30:00+00:00", False, "2026-12-07T08:30:00+01:00"),  # Friday 14:30: Monday morning
    ("2026-12-06T10:00:00+00:00", False, "2026-12-07T08:30:00+01:00"),  # Sunday
    ("2026-12-07T07:00:00+00:00", False, "2026-12-07T08:30:00+01:00"),  # Monday 08:00: opens soon
])
def test_the_wait_follows_the_office_hours(moment, open_now, next_open):
    wait = hours.wait(TUNIS, dt.datetime.fromisoformat(moment))
    assert wait.open_now is open_now and wait.minutes == 30
    assert wait.next_open == (dt.datetime.fromisoformat(next_open) if next_open else None)


def test_one_active_ticket_per_person_and_one_winner_per_race(database_url):
    first = tickets.open_ticket("+21650999001", "user_request", "sms", "ar", "TN", "sample-tn")
    assert tickets.open_ticket("+21650999001", "sensitive", "sms", "ar", "TN", "sample-tn").id == first.id
    racers = [advisors.add(f"Racer {i}", "telegram", str(880000 + i)) for i in range(6)]
    won = {}
    barrier = threading.Barrier(len(racers))

    def take(advisor):
        barrier.wait()
        won[advisor.id] = tickets.claim(first.id, advisor.id, advisor.name)

    threads = [threading.Thread(target=take, args=(a,)) for a in racers]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(won.values()) == 1
    holder = tickets.get(first.id)
    assert won[holder.advisor_id] and holder.status == tickets.CLAIMED
    other = next(a for a in racers if a.id != holder.advisor_id)
    assert not tickets.release(first.id, other.id) and not tickets.close(first.id, other.id, "resolved")
    assert tickets.release(first.id, holder.advisor_id)
    assert tickets.active_for("+21650999001") is None


def test_advisors_are_found_by_their_contact_as_channels_report_it(database_url):
    advisor = advisors.add("Farid Haddad", "sms", "+216 98 123 456", "sample-tn", ("ar", "fr"))
    assert advisor.contact == "+21698123456" and advisor.first_name == "Farid"
    assert advisors.find("sms", "+21698123456") == advisor
    assert advisors.find("sms", "+21698123457") is None
    assert advisors.find("telegram", "+21698123456") is None
    with pytest.raises(advisors.AdvisorError):
        advisors.add("Nobody", "telegram", "@nobody")
    assert advisors.deactivate(advisor.id) and advisors.find("sms", "+21698123456") is None


def test_the_command_line_lists_the_queue_and_manages_advisors(database_url, capsys):
    assert cli(["advisors", "add", "Zahra Ahmadi", "telegram", "7770001", "--languages", "fa", "ps"]) == 0
    assert cli(["advisors", "add", "Bad", "sms", "not a number"]) == 2
    ticket = tickets.open_ticket("+93700999001", "sensitive", "whatsapp", "fa", "AF", "sample-af")
    assert cli(["queue"]) == 0
    out = capsys.readouterr().out
    assert "Zahra Ahmadi" in out and f"#{ticket.id}" in out and "sensitive" in out


@pytest.mark.parametrize("text, sensitive_", [
    ("They threatened me because of the loan", True),
    ("I cannot repay, the debt collector comes every day", True),
    ("how do I repay the loan each month", False),
    ("what documents do I need", False),
])
def test_sensitive_phrases_match_whole_words(text, sensitive_):
    assert (sensitive.match(text) is not None) is sensitive_


def test_every_language_has_sensitive_phrases():
    languages = {language for language, _ in sensitive.phrases()}
    assert languages == {"en", "fr", "ar", "fa", "ps", "ur"}


class RecordingBot:
    """The part of python-telegram-bot's `Bot` that erasing uses; `refuse` lists what fails how."""

    def __init__(self, **refuse: Exception) -> None:
        self.calls, self.refuse = [], refuse

    async def _call(self, name: str, *args) -> bool:
        self.calls.append((name, *args))
        if name in self.refuse:
            raise self.refuse[name]
        return True

    async def delete_forum_topic(self, chat_id, message_thread_id):
        return await self._call("delete_forum_topic", chat_id, message_thread_id)

    async def delete_message(self, chat_id, message_id):
        return await self._call("delete_message", chat_id, message_id)

    async def edit_message_text(self, text, chat_id, message_id):
        return await self._call("edit_message_text", chat_id, message_id, text)


def ticket_with_posts(sender: str, posts) -> tickets.Ticket:
    ticket = tickets.open_ticket(sender, "user_request", "telegram", "fa", "AF", "sample-af")
    for chat, message, thread in posts:
        tickets.remember_post(ticket.id, chat, message, thread)
    return ticket


async def test_forgetting_deletes_a_tickets_forum_topic_whole_and_its_other_posts_one_by_one(database_url):
    from bot.handoff.desk import Desk

    ticket_with_posts("6100000001", [("-1001", "11", "77"), ("-1001", "12", "77"), ("-1002", "13", None)])
    assert tickets.forget("6100000001") == 1
    assert tickets.ticket_of_post("-1001", "11") is None  # a reply to it finds nothing any more
    bot = RecordingBot()
    await Desk(None, {}, telegram=bot).erase_forgotten_posts()
    assert bot.calls == [("delete_forum_topic", -1001, 77), ("delete_message", -1002, 13)]
    assert tickets.posts_to_erase() == []


async def test_a_post_too_old_to_delete_is_blanked_and_an_unreachable_api_is_tried_again(database_url):
    from telegram.error import BadRequest, NetworkError

    from bot.handoff.desk import Desk

    ticket_with_posts("6100000002", [("-1003", "21", None)])
    tickets.forget("6100000002")
    offline = RecordingBot(delete_message=NetworkError("Connection refused"))
    await Desk(None, {}, telegram=offline).erase_forgotten_posts()
    [waiting] = tickets.posts_to_erase()
    assert (waiting.message_id, waiting.attempts) == ("21", 1)

    too_old = RecordingBot(delete_message=BadRequest("Message can't be deleted for everyone"))
    await Desk(None, {}, telegram=too_old).erase_forgotten_posts()
    assert too_old.calls[-1] == ("edit_message_text", -1003, 21, Desk.staff_renderer().gettext("desk.post_erased"))
    assert tickets.posts_to_erase() == []


async def test_without_the_right_to_delete_topics_each_post_of_the_topic_goes_alone(database_url):
    from telegram.error import BadRequest

    from bot.handoff.desk import Desk

    ticket_with_posts("6100000003", [("-1004", "31", "88"), ("-1004", "32", "88")])
    tickets.forget("6100000003")
    bot = RecordingBot(delete_forum_topic=BadRequest("Not enough rights to delete the topic"))
    await Desk(None, {}, telegram=bot).erase_forgotten_posts()
    assert bot.calls == [("delete_forum_topic", -1004, 88), ("delete_message", -1004, 31),
                         ("delete_message", -1004, 32)]  # the topic is tried once, not per post
    assert tickets.posts_to_erase() == []

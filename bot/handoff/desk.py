"""The advisor desk, inside the Rasa server: tickets announced to advisors, messages carried
both ways, the conversation handed back to the bot.

Advisors work from the Telegram advisors' group of their programme (one forum topic per ticket
when the group has topics, else one message per ticket to reply to) or by SMS/WhatsApp with
`#42 text` commands. What the desk says to advisors is in the catalogs (`desk.*`), in the
programme's default language for the group and in the advisor's first language by SMS. What
reaches the returnee is rendered in the returnee's language and written to their conversation.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Dict, Iterable, List, Optional, Tuple

from bot import programme as programmes
from bot.handoff import advisors as registry
from bot.handoff import tickets
from bot.handoff.advisors import Advisor
from bot.handoff.tickets import Ticket
from bot.i18n import Renderer
from bot.storage import utcnow

logger = logging.getLogger(__name__)

QUICK_REPLIES = {"hello": "advisor.greeting", "check": "advisor.check", "wait": "advisor.wait",
                 "bye": "advisor.bye"}
RESOLUTIONS = ("resolved", "referred", "no_answer", "duplicate", "other")
TRANSCRIPT_LINES = 6
SMS_LIMIT = 320  # characters of one text to an SMS advisor (a few segments)
SMS_COMMAND = re.compile(r"^\s*#\s*(\d{1,9})\s*(.*)$", re.S)


@dataclass(frozen=True)
class DeskSettings:
    """Timings of the desk, from the environment."""

    tick_seconds: float = 2.0
    reannounce_minutes: float = 10.0
    idle_minutes: float = 60.0
    telegram_chat_id: Optional[str] = None  # the advisors' group for every programme without its own

    @classmethod
    def from_env(cls, env=os.environ) -> "DeskSettings":
        """`HANDOFF_TICK_SECONDS`, `HANDOFF_REANNOUNCE_MINUTES`, `HANDOFF_IDLE_MINUTES`,
        `TELEGRAM_ADVISORS_CHAT_ID`."""
        return cls(float(env.get("HANDOFF_TICK_SECONDS") or 2), float(env.get("HANDOFF_REANNOUNCE_MINUTES") or 10),
                   float(env.get("HANDOFF_IDLE_MINUTES") or 60), env.get("TELEGRAM_ADVISORS_CHAT_ID") or None)


class Desk:
    """Carries a handed-over conversation between the returnee and the advisors.

    `agent` is Rasa's agent (tracker store, lock store), `outputs` the returnee-facing output
    channels by channel name, `telegram` a python-telegram-bot `Bot` for the advisors' groups
    (or None), `sms` a sender with `async send(to, body)` for SMS/WhatsApp advisors (or None).
    """

    def __init__(self, agent: Any, outputs: Dict[str, Any], telegram: Any = None, sms: Any = None,
                 settings: Optional[DeskSettings] = None) -> None:
        self.agent, self.outputs, self.telegram, self.sms = agent, outputs, telegram, sms
        self.settings = settings or DeskSettings.from_env()
        self._forum: Dict[str, bool] = {}
        self._task: Optional[asyncio.Task] = None

    # ---- where advisors are ---------------------------------------------------------------

    def group_of(self, ticket: Ticket) -> Optional[str]:
        """The advisors' Telegram group for a ticket's programme."""
        programme = programmes.load_all().get(ticket.programme or "")
        configured = ((programme.data.get("advisors") or {}).get("telegram_chat_id") if programme else None)
        chat = configured or self.settings.telegram_chat_id
        return str(chat) if chat and self.telegram is not None else None

    def is_advisors_chat(self, chat_id: Any) -> bool:
        """Whether a Telegram chat is an advisors' group (its messages are for the desk)."""
        chats = {str(self.settings.telegram_chat_id)} if self.settings.telegram_chat_id else set()
        for programme in programmes.load_all().values():
            chat = (programme.data.get("advisors") or {}).get("telegram_chat_id")
            if chat:
                chats.add(str(chat))
        return str(chat_id) in chats

    @staticmethod
    def staff_renderer(ticket: Optional[Ticket] = None, advisor: Optional[Advisor] = None) -> Renderer:
        """Text for advisors: the advisor's first language, else the programme's default."""
        programme = programmes.load_all().get(ticket.programme or "") if ticket else None
        programme = programme or programmes.default()
        language = advisor.languages[0] if advisor and advisor.languages else programme.default_language
        return Renderer(language, programme.country, programme.currency, programme.timezone)

    @staticmethod
    def returnee_renderer(ticket: Ticket) -> Renderer:
        """Text for the returnee: their language, their programme's formats."""
        programme = programmes.load_all().get(ticket.programme or "") or programmes.default()
        return Renderer(ticket.language, programme.country, programme.currency, programme.timezone)

    # ---- the background loop --------------------------------------------------------------

    def start(self) -> None:
        """Starts announcing and re-announcing tickets, and releasing idle ones."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stops the loop."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup: try again next tick
                logger.exception("advisor desk: tick failed")
            await asyncio.sleep(self.settings.tick_seconds)

    async def tick(self, now: Optional[dt.datetime] = None) -> None:
        """Announces new tickets, re-announces those still waiting, releases silent ones."""
        now = now or utcnow()
        before = now - dt.timedelta(minutes=self.settings.reannounce_minutes)
        for ticket in await asyncio.to_thread(tickets.to_announce, before):
            if await asyncio.to_thread(tickets.mark_announced, ticket.id, before, now):
                await self.announce(ticket, again=ticket.announced_at is not None, now=now)
        await self.erase_forgotten_posts()
        idle_before = now - dt.timedelta(minutes=self.settings.idle_minutes)
        for ticket in await asyncio.to_thread(tickets.idle, idle_before):
            if await asyncio.to_thread(tickets.release, ticket.id, None, now):
                await self._hand_back(ticket, "desk.auto_released",
                                      {"ticket": ticket.id, "minutes": self.settings.idle_minutes})

    async def erase_forgotten_posts(self) -> None:
        """Deletes from the advisors' groups what the desk posted about people who asked to be
        forgotten: a ticket's forum topic as a whole (advisors' replies in it too), else each post.
        A post Telegram no longer lets a bot delete (older than 48 hours) is blanked instead; an
        unreachable API is tried again at the next tick."""
        if self.telegram is None:
            return
        topics_tried, topics_gone = set(), set()
        for post in await asyncio.to_thread(tickets.posts_to_erase):
            chat, message, topic = post.chat_id, post.message_id, post.thread_id
            if (chat, topic) in topics_gone:
                continue
            try:
                if topic and (chat, topic) not in topics_tried:
                    topics_tried.add((chat, topic))
                    if not await self._refused(self.telegram.delete_forum_topic(int(chat), int(topic))):
                        topics_gone.add((chat, topic))
                        await asyncio.to_thread(tickets.post_erased, chat, thread_id=topic)
                        continue
                if await self._refused(self.telegram.delete_message(int(chat), int(message))):
                    blank = self.staff_renderer().gettext("desk.post_erased")
                    await self._refused(self.telegram.edit_message_text(blank, chat_id=int(chat),
                                                                        message_id=int(message)))
            except Exception as error:  # Telegram cannot be reached: next tick
                await self._erase_later(chat, message, error)
                continue
            await asyncio.to_thread(tickets.post_erased, chat, message)

    @staticmethod
    async def _refused(call: Awaitable[Any]) -> bool:
        """Runs a Bot API call; True when Telegram refuses it (gone already, too old, no right)."""
        from telegram.error import BadRequest, Forbidden

        try:
            await call
        except (BadRequest, Forbidden):
            return True
        return False

    @staticmethod
    async def _erase_later(chat: str, message: str, error: Exception) -> None:
        if await asyncio.to_thread(tickets.erase_failed, chat, message):
            logger.error("advisor desk: gave up deleting post %s in %s: %s", message, chat, error)
        else:
            logger.warning("advisor desk: could not delete post %s in %s yet: %s", message, chat, error)

    # ---- announcing -----------------------------------------------------------------------

    async def transcript(self, sender_id: str) -> str:
        """The last messages of the conversation, one per line, the person's first."""
        tracker = await self.agent.tracker_store.retrieve(sender_id) if self.agent else None
        lines: List[str] = []
        for event in reversed(list(tracker.events) if tracker else []):
            kind = getattr(event, "type_name", "")
            text = getattr(event, "text", None)
            if kind in ("user", "bot") and text:
                lines.append(f"{'>' if kind == 'user' else '<'} {text[:300]}")
                if len(lines) == TRANSCRIPT_LINES:
                    break
        return "\n".join(reversed(lines))

    async def announce(self, ticket: Ticket, again: bool = False, now: Optional[dt.datetime] = None) -> None:
        """Tells the advisors about a ticket: in their Telegram group and to SMS advisors."""
        chat = self.group_of(ticket)
        if chat:
            renderer = self.staff_renderer(ticket)
            if again:
                minutes = int(((now or utcnow()) - ticket.created_at).total_seconds() // 60)
                text = renderer.render("desk.waiting", {"ticket": ticket.id, "minutes": minutes})
            else:
                text = renderer.render("desk.new_ticket", self._facts(ticket, renderer) | {
                    "transcript": await self.transcript(ticket.sender_id)})
            thread = await self._thread(ticket, chat) if not again else \
                await asyncio.to_thread(tickets.thread_of, ticket.id, chat)
            await self._post(ticket, chat, text, thread, [[(renderer.render("btn.take"), f"take:{ticket.id}")]])
        for advisor in await asyncio.to_thread(registry.reachable_by_sms, ticket.programme):
            renderer = self.staff_renderer(ticket, advisor)
            key = "desk.sms_waiting" if again else "desk.sms_new"
            await self._sms(advisor, renderer.render(key, self._facts(ticket, renderer)))

    @staticmethod
    def _facts(ticket: Ticket, renderer: Renderer) -> Dict[str, Any]:
        return {"ticket": ticket.id, "language": Renderer(ticket.language).gettext("lang_name"),
                "code": ticket.language, "channel": ticket.channel,
                "country": renderer.country_name(ticket.country) if ticket.country else "-",
                "reason": f"desk.reason.{ticket.reason}"}

    async def _thread(self, ticket: Ticket, chat: str) -> Optional[str]:
        """A forum topic for the ticket when the group has topics."""
        if chat not in self._forum:
            try:
                self._forum[chat] = bool(getattr(await self.telegram.get_chat(int(chat)), "is_forum", False))
            except Exception as error:  # an unreachable API: post without topics this time
                logger.warning("advisor desk: could not read the advisors' group: %s", error)
                return None
        if not self._forum[chat]:
            return None
        try:
            topic = await self.telegram.create_forum_topic(int(chat), f"#{ticket.id} {ticket.language} {ticket.channel}")
        except Exception as error:
            logger.warning("advisor desk: could not open a topic for ticket %s: %s", ticket.id, error)
            return None
        return str(topic.message_thread_id)

    async def _post(self, ticket: Optional[Ticket], chat: str, text: str, thread: Optional[str] = None,
                    buttons: Iterable[Iterable[Tuple[str, str]]] = (), reply_to: Optional[str] = None) -> None:
        """Posts to an advisors' group, and remembers the message as belonging to the ticket."""
        from telegram import InlineKeyboardButton, InlineKeyboardMarkup

        markup = InlineKeyboardMarkup([[InlineKeyboardButton(title[:60], callback_data=data) for title, data in row]
                                       for row in buttons]) if buttons else None
        try:
            message = await self.telegram.send_message(
                int(chat), text[:4096], message_thread_id=int(thread) if thread else None, reply_markup=markup,
                reply_to_message_id=int(reply_to) if reply_to and not thread else None,
                allow_sending_without_reply=True)
        except Exception as error:
            logger.error("advisor desk: could not post to the advisors' group: %s", error)
            return
        if ticket is not None:
            await asyncio.to_thread(tickets.remember_post, ticket.id, chat, str(message.message_id), thread)

    async def _sms(self, advisor: Advisor, text: str) -> None:
        if self.sms is None:
            logger.warning("advisor desk: SMS advisor %s cannot be reached: Twilio is not configured", advisor.id)
            return
        if len(text) > SMS_LIMIT:
            text = text[:SMS_LIMIT - 1] + "…"
        try:
            await self.sms.send(advisor.contact, text)
        except Exception:
            logger.exception("advisor desk: could not text advisor %s", advisor.id)

    async def _to_ticket_place(self, ticket: Ticket, text: str, buttons=()) -> None:
        """Posts about a ticket where its advisors are: its topic or under its first message,
        and by SMS to the advisor who holds it when they work by SMS."""
        chat = self.group_of(ticket)
        if chat:
            thread = await asyncio.to_thread(tickets.thread_of, ticket.id, chat)
            first = None if thread else await asyncio.to_thread(tickets.first_post, ticket.id, chat)
            await self._post(ticket, chat, text, thread, buttons, reply_to=first)
        holder = registry.get(ticket.advisor_id) if ticket.advisor_id else None
        if holder is not None and holder.channel != "telegram":
            await self._sms(holder, text)

    # ---- the returnee's side --------------------------------------------------------------

    async def returnee_wrote(self, sender_id: str, text: str, metadata: Optional[Dict[str, Any]],
                             since: dt.datetime) -> bool:
        """Passes a message of a handed-over conversation to the advisors; False if none holds it."""
        ticket = await asyncio.to_thread(tickets.active_for, sender_id)
        if ticket is None or ticket.created_at >= since:
            return False
        await asyncio.to_thread(tickets.touch, ticket.id)
        media = (metadata or {}).get("media")
        if media and not text.strip("[]").strip():
            text = "[media]"
        await self._to_ticket_place(ticket, self.staff_renderer(ticket).render(
            "desk.from_returnee", {"ticket": ticket.id, "text": text}))
        return True

    async def _write_to_returnee(self, ticket: Ticket, text: str, events_before: Tuple = (),
                                 advisor: Optional[Advisor] = None) -> None:
        """Adds the message to the conversation (under its lock), then sends it on its channel."""
        from rasa.shared.core.events import BotUttered

        metadata = {"ticket": ticket.id, **({"advisor": advisor.first_name} if advisor else {})}
        async with self.agent.lock_store.lock(ticket.sender_id):
            tracker = await self.agent.tracker_store.get_or_create_tracker(ticket.sender_id)
            for event in events_before:
                tracker.update(event)
            tracker.update(BotUttered(text, metadata=metadata))
            await self.agent.tracker_store.save(tracker)
        output = self.outputs.get(ticket.channel)
        if output is None:
            logger.info("advisor desk: ticket %s is on %s, which cannot be reached now; kept in the conversation",
                        ticket.id, ticket.channel)
            return
        await output.send_text_message(ticket.sender_id, text)

    # ---- the advisor's side ---------------------------------------------------------------

    async def take(self, ticket_id: int, advisor: Advisor) -> Tuple[bool, Optional[Ticket]]:
        """The advisor claims the ticket; tells the group who holds it, with the ready phrases."""
        ticket = await asyncio.to_thread(tickets.get, ticket_id)
        if ticket is None or not ticket.active:
            return False, ticket
        won = await asyncio.to_thread(tickets.claim, ticket_id, advisor.id, advisor.name)
        ticket = await asyncio.to_thread(tickets.get, ticket_id)
        if not won:
            return False, ticket
        renderer = self.staff_renderer(ticket, advisor)
        returnee = self.returnee_renderer(ticket)
        buttons = [[(returnee.render(key, {"advisor": advisor.first_name}), f"quick:{ticket.id}:{name}")]
                   for name, key in QUICK_REPLIES.items()]
        chat = self.group_of(ticket)
        if chat and advisor.channel == "telegram":
            await self._to_ticket_place(ticket, renderer.render("desk.taken", {
                "ticket": ticket.id, "advisor": advisor.name,
                "language": Renderer(ticket.language).gettext("lang_name")}), buttons)
        elif advisor.channel != "telegram":
            await self._sms(advisor, renderer.render("desk.sms_taken", self._facts(ticket, renderer) | {
                "transcript": await self.transcript(ticket.sender_id)}))
            if chat:
                await self._post(ticket, chat, renderer.render("desk.held_by", {"ticket": ticket.id,
                                                                                 "advisor": advisor.name}))
        return True, ticket

    async def answer(self, ticket_id: int, advisor: Advisor, text: str) -> Tuple[str, Optional[Ticket]]:
        """The advisor's message to the returnee: ("sent"|"held"|"gone", ticket). An open ticket
        is taken by the advisor who answers it first."""
        ticket = await asyncio.to_thread(tickets.get, ticket_id)
        if ticket is None or not ticket.active:
            return "gone", ticket
        if ticket.status == tickets.OPEN:
            taken, ticket = await self.take(ticket_id, advisor)
            if not taken:
                return ("held" if ticket and ticket.active else "gone"), ticket
        elif ticket.advisor_id != advisor.id:
            return "held", ticket
        returnee = self.returnee_renderer(ticket)
        await self._write_to_returnee(ticket, returnee.render("utter_handoff_advisor_message",
                                                              {"advisor": advisor.first_name, "text": text}),
                                      advisor=advisor)
        await asyncio.to_thread(tickets.record_reply, ticket.id, advisor.id)
        return "sent", ticket

    async def quick_reply(self, ticket_id: int, advisor: Advisor, name: str) -> Tuple[str, Optional[Ticket]]:
        """Sends one of the bot's ready phrases in the returnee's language; "bye" also releases."""
        ticket = await asyncio.to_thread(tickets.get, ticket_id)
        if ticket is None or name not in QUICK_REPLIES:
            return "gone", ticket
        phrase = self.returnee_renderer(ticket).render(QUICK_REPLIES[name], {"advisor": advisor.first_name})
        outcome, ticket = await self.answer(ticket_id, advisor, phrase)
        if outcome == "sent" and name == "bye":
            return ("released" if await self.release(ticket_id, advisor) else outcome), ticket
        return outcome, ticket

    async def release(self, ticket_id: int, advisor: Advisor) -> bool:
        """The holder hands the conversation back to the bot."""
        ticket = await asyncio.to_thread(tickets.get, ticket_id)
        if ticket is None or not await asyncio.to_thread(tickets.release, ticket_id, advisor.id):
            return False
        await self._hand_back(ticket, "desk.released", {"ticket": ticket.id, "advisor": advisor.name})
        return True

    async def close(self, ticket_id: int, advisor: Advisor, resolution: str) -> bool:
        """Ends the ticket with a resolution tag and hands the conversation back to the bot."""
        ticket = await asyncio.to_thread(tickets.get, ticket_id)
        if ticket is None or not await asyncio.to_thread(tickets.close, ticket_id, advisor.id, resolution):
            return False
        await self._hand_back(ticket, "desk.closed", {"ticket": ticket.id, "advisor": advisor.name,
                                                      "resolution": resolution})
        return True

    async def _hand_back(self, ticket: Ticket, notice: str, variables: Dict[str, Any]) -> None:
        from rasa.shared.core.constants import ACTION_LISTEN_NAME
        from rasa.shared.core.events import ActionExecuted, ConversationResumed

        # the message that came while paused was never answered by the bot: without a listen
        # after it, the rules match nothing at the next message and Rasa predicts fallbacks
        # until its circuit breaker stops it
        await self._write_to_returnee(ticket, self.returnee_renderer(ticket).render("utter_handoff_back"),
                                      (ConversationResumed(), ActionExecuted(ACTION_LISTEN_NAME)))
        await self._to_ticket_place(ticket, self.staff_renderer(ticket).render(notice, variables))

    # ---- advisors' commands by SMS --------------------------------------------------------

    async def on_sms(self, advisor: Advisor, text: str) -> str:
        """`#42 TAKE`, `#42 RELEASE`, `#42 CLOSE [tag]`, `#42 HELLO|CHECK|WAIT|BYE`, `#42 text`,
        `HELP`; answers the advisor by SMS. Returns what was done."""
        renderer = self.staff_renderer(None, advisor)
        match = SMS_COMMAND.match(text or "")
        if not match or not match.group(2).strip():
            await self._sms(advisor, renderer.render("desk.sms_help"))
            return "help"
        ticket_id, rest = int(match.group(1)), match.group(2).strip()
        word, _, argument = rest.partition(" ")
        verb = word.upper()
        if verb == "TAKE":
            taken, ticket = await self.take(ticket_id, advisor)
            if not taken:
                await self._sms(advisor, self._refusal(ticket_id, ticket, renderer))
            return "taken" if taken else "refused"
        if verb == "RELEASE":
            done = await self.release(ticket_id, advisor)
        elif verb == "CLOSE":
            tag = (argument.strip().lower() or "resolved")
            if tag not in RESOLUTIONS:
                await self._sms(advisor, renderer.render("desk.close_tags", {"tags": " ".join(RESOLUTIONS)}))
                return "refused"
            done = await self.close(ticket_id, advisor, tag)
        elif verb.lower() in QUICK_REPLIES and not argument.strip():
            outcome, ticket = await self.quick_reply(ticket_id, advisor, verb.lower())
            done = outcome in ("sent", "released")
        else:
            outcome, ticket = await self.answer(ticket_id, advisor, rest)
            done = outcome == "sent"
        if not done:
            await self._sms(advisor, self._refusal(ticket_id, await asyncio.to_thread(tickets.get, ticket_id),
                                                   renderer))
            return "refused"
        return verb.lower() if verb in ("RELEASE", "CLOSE") else "sent"

    @staticmethod
    def _refusal(ticket_id: int, ticket: Optional[Ticket], renderer: Renderer) -> str:
        if ticket is not None and ticket.status == tickets.CLAIMED:
            return renderer.render("desk.held_by", {"ticket": ticket_id, "advisor": ticket.advisor or "?"})
        return renderer.render("desk.unknown_ticket", {"ticket": ticket_id})

    # ---- advisors' group on Telegram ------------------------------------------------------

    async def on_telegram(self, update: Any) -> str:
        """A button press or a message in an advisors' group. Returns what was done."""
        if update.callback_query:
            return await self._telegram_button(update.callback_query)
        message = update.message or update.edited_message
        if message is None or not (message.text or message.caption):
            return "ignored"
        chat = str(message.chat.id)
        reply = message.reply_to_message
        thread = message.message_thread_id if getattr(message, "is_topic_message", False) else None
        ticket_id = await asyncio.to_thread(tickets.ticket_of_post, chat, reply and str(reply.message_id),
                                            thread and str(thread))
        if ticket_id is None:
            return "ignored"  # the advisors talking among themselves
        user = message.from_user
        advisor = registry.find("telegram", str(user.id)) if user else None
        ticket = await asyncio.to_thread(tickets.get, ticket_id)
        renderer = self.staff_renderer(ticket)
        if advisor is None:
            logger.warning("advisor desk: refused a message on ticket %s from an unregistered Telegram user",
                           ticket_id)
            await self._post(None, chat, renderer.render("desk.not_advisor"), thread and str(thread),
                             reply_to=str(message.message_id))
            return "refused"
        text = (message.text or message.caption).strip()
        if text.startswith("/"):
            command, _, argument = text[1:].partition(" ")
            command = command.split("@", 1)[0].lower()
            if command == "release":
                done = await self.release(ticket_id, advisor)
            elif command == "close":
                tag = argument.strip().lower() or "resolved"
                if tag not in RESOLUTIONS:
                    await self._post(None, chat, renderer.render("desk.close_tags", {"tags": " ".join(RESOLUTIONS)}),
                                     thread and str(thread), reply_to=str(message.message_id))
                    return "refused"
                done = await self.close(ticket_id, advisor, tag)
            elif command == "take":
                done, ticket = await self.take(ticket_id, advisor)
            else:
                return "ignored"
            if not done:
                await self._post(None, chat, self._refusal(ticket_id, await asyncio.to_thread(tickets.get, ticket_id),
                                                           renderer), thread and str(thread),
                                 reply_to=str(message.message_id))
            return command if done else "refused"
        outcome, ticket = await self.answer(ticket_id, advisor, text)
        if outcome != "sent":
            await self._post(None, chat, self._refusal(ticket_id, ticket, renderer), thread and str(thread),
                             reply_to=str(message.message_id))
            return "refused"
        return "sent"

    async def _telegram_button(self, query: Any) -> str:
        data = query.data or ""
        kind, _, rest = data.partition(":")
        ticket_id_text, _, name = rest.partition(":")
        if kind not in ("take", "quick") or not (ticket_id_text.isascii() and ticket_id_text.isdigit()):
            await self._answer_button(query)
            return "ignored"
        ticket_id = int(ticket_id_text)
        ticket = await asyncio.to_thread(tickets.get, ticket_id)
        renderer = self.staff_renderer(ticket)
        advisor = registry.find("telegram", str(query.from_user.id)) if query.from_user else None
        if advisor is None:
            logger.warning("advisor desk: refused a button on ticket %s from an unregistered Telegram user", ticket_id)
            await self._answer_button(query, renderer.render("desk.not_advisor"))
            return "refused"
        if kind == "take":
            taken, ticket = await self.take(ticket_id, advisor)
            await self._answer_button(query, None if taken else self._refusal(ticket_id, ticket, renderer))
            return "taken" if taken else "refused"
        outcome, ticket = await self.quick_reply(ticket_id, advisor, name)
        await self._answer_button(query, None if outcome in ("sent", "released")
                                  else self._refusal(ticket_id, ticket, renderer))
        return outcome if outcome in ("sent", "released") else "refused"

    async def _answer_button(self, query: Any, text: Optional[str] = None) -> None:
        try:
            await self.telegram.answer_callback_query(query.id, text=text[:200] if text else None,
                                                      show_alert=bool(text))
        except Exception as error:
            logger.warning("advisor desk: could not answer a button press: %s", error)


_current: Optional[Desk] = None


def current() -> Optional[Desk]:
    """The desk of this server process, once it has started."""
    return _current


def install(desk: Optional[Desk]) -> None:
    """Makes `desk` the one the channels hand advisors' messages to."""
    global _current
    _current = desk

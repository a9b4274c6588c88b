"""End to end: a returnee handed to an advisor and back, with the real Rasa server and action
server, the Telegram and Twilio webhooks, and the local stand-ins of both APIs.

The advisors' Telegram group is chat -100777; advisors are registered in the database like
`python -m bot.handoff advisors add` does.
"""
from __future__ import annotations

import html
import shutil
import json
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
import sqlalchemy as sa

from bot.handoff import advisors, tickets
from bot.handoff.desk import Desk
from bot.i18n import Renderer
from channels.sms import prefer_gsm7
from tests.conftest import ROOT, start_rasa_server
from tests.standins import TelegramStandIn
from tests.test_dashboard_browser import CHROMEDRIVER, CHROMIUM, browser, downloads  # noqa: F401 (fixtures)
from tests.test_channels_e2e import (  # noqa: F401 (stand_ins is a fixture)
    SECRET, channel_settings, post, stand_ins, twilio_message)

GROUP = -100777
BOT = TelegramStandIn.BOT
_ids = iter(range(870000000, 870100000))


@pytest.fixture(scope="module")
def server(tmp_path_factory, action_server, database_url, stand_ins):
    """A holder of the running server (the restart test replaces it)."""
    telegram, twilio = stand_ins
    tmp = tmp_path_factory.mktemp("handoff_e2e")
    env = dict(channel_settings(telegram, twilio), TELEGRAM_ADVISORS_CHAT_ID=str(GROUP),
               HANDOFF_TICK_SECONDS="0.3", HANDOFF_IDLE_MINUTES="30")

    def start():
        return start_rasa_server(tmp, action_server, tmp / "tracker.db", database_url,
                                 credentials=ROOT / "bot" / "credentials.yml", env_extra=env)

    holder = {"server": start(), "start": start}
    yield holder
    holder["server"].stop()


def telegram_post(server, update: dict) -> tuple:
    update = {"update_id": next(_ids), **update}
    return post(f"{server.url}/webhooks/telegram/webhook", json.dumps(update).encode(),
                {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET})


def person(user_id: int, language: str = "en", name: str = "Test") -> dict:
    return {"id": user_id, "is_bot": False, "first_name": name, "language_code": language}


def private_text(server, user_id: int, language: str, text: str) -> tuple:
    chat = {"id": user_id, "type": "private", "first_name": "Test"}
    return telegram_post(server, {"message": {"message_id": next(_ids), "from": person(user_id, language),
                                              "chat": chat, "date": int(time.time()), "text": text}})


def group_text(server, user_id: int, text: str, reply_to: str) -> tuple:
    chat = {"id": GROUP, "type": "supergroup", "title": "Advisors"}
    replied = {"message_id": int(reply_to), "chat": chat, "date": int(time.time()), "from": BOT, "text": "…"}
    return telegram_post(server, {"message": {"message_id": next(_ids), "from": person(user_id), "chat": chat,
                                              "date": int(time.time()), "text": text,
                                              "reply_to_message": replied}})


def press(server, user_id: int, data: str) -> tuple:
    chat = {"id": GROUP, "type": "supergroup", "title": "Advisors"}
    return telegram_post(server, {"callback_query": {
        "id": f"cb{next(_ids)}", "from": person(user_id), "chat_instance": "9", "data": data,
        "message": {"message_id": 1, "chat": chat, "date": int(time.time()), "text": "…"}}})


def wait_until(check, seconds: float = 20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    return check()


def group_posts(telegram) -> list:
    return [r for r in telegram.sent("sendMessage") if str(r.params.get("chat_id")) == str(GROUP)]


def announced(telegram, ticket_id: int) -> list:
    return [r for r in group_posts(telegram)
            if any(b.get("callback_data") == f"take:{ticket_id}"
                   for row in (r.params.get("reply_markup") or {}).get("inline_keyboard", []) for b in row)]


def first_post(ticket_id: int) -> str:
    return wait_until(lambda: tickets.first_post(ticket_id, str(GROUP)))


def tracker(server, sender: str) -> dict:
    url = f"{server.url}/conversations/{sender}/tracker?token={server.token}"
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())


def sms_to(twilio, number: str) -> list:
    return [r.params["Body"] for r in twilio.sent("Messages.json") if r.params.get("To") == number]


def telegram_to(telegram, chat: int) -> list:
    return [html.unescape(r.params["text"]) for r in telegram.sent("sendMessage")
            if str(r.params.get("chat_id")) == str(chat)]


def handoff_confirmation(language: str, texts: list) -> bool:
    renderer = Renderer(language)
    starts = [renderer.gettext(key).split("{")[0][:30] for key in ("utter_handoff_open", "utter_handoff_closed")]
    return any(prefer_gsm7(start) in prefer_gsm7(text) for text in texts for start in starts)


def register(name: str, channel: str, contact: str, languages=("ar",)) -> advisors.Advisor:
    return advisors.add(name, channel, contact, None, tuple(languages))


def test_sms_returnee_in_arabic_to_a_telegram_advisor_and_back(server, stand_ins):
    telegram, twilio = stand_ins
    srv = server["server"]
    amina = register("Amina Ben Ali", "telegram", "5551001")
    returnee = "+21650300001"
    twilio.clear()
    telegram.clear()
    twilio_message(srv, returnee, "السلام عليكم، أريد التحدث مع مستشار من فضلك")
    assert handoff_confirmation("ar", sms_to(twilio, returnee)), sms_to(twilio, returnee)
    ticket = tickets.active_for(returnee)
    assert (ticket.status, ticket.reason, ticket.channel, ticket.language) == ("open", "user_request", "sms", "ar")
    assert tracker(srv, returnee)["paused"] is True

    [announcement] = wait_until(lambda: announced(telegram, ticket.id))
    text = announcement.params["text"]
    assert f"#{ticket.id}" in text and "sms" in text and "أريد التحدث مع مستشار" in text

    press(srv, 5551001, f"take:{ticket.id}")
    assert tickets.get(ticket.id).status == "claimed" and tickets.get(ticket.id).advisor_id == amina.id
    quick = [b for r in group_posts(telegram) for row in (r.params.get("reply_markup") or {}).get("inline_keyboard", [])
             for b in row if b.get("callback_data", "").startswith(f"quick:{ticket.id}:")]
    assert Renderer("ar").render("advisor.check") in [b["text"] for b in quick]

    twilio.clear()
    twilio_message(srv, returnee, "عندي مشكلة في سداد القسط الثاني")
    assert sms_to(twilio, returnee) == []  # the bot stays silent
    assert wait_until(lambda: [p for p in group_posts(telegram) if "القسط الثاني" in p.params["text"]])

    group_text(srv, 5551001, "مرحبا، سأتحقق من ملفك الآن", first_post(ticket.id))
    expected = Renderer("ar").render("utter_handoff_advisor_message", {"advisor": "Amina",
                                                                        "text": "مرحبا، سأتحقق من ملفك الآن"})
    assert wait_until(lambda: sms_to(twilio, returnee)) == [prefer_gsm7(expected)] or \
        sms_to(twilio, returnee) == [expected]
    assert tickets.get(ticket.id).first_reply_at is not None
    bot_texts = [e.get("text") for e in tracker(srv, returnee)["events"] if e["event"] == "bot"]
    assert expected in bot_texts

    press(srv, 5551001, f"quick:{ticket.id}:check")
    assert Renderer("ar").render("advisor.check") in "".join(wait_until(lambda: sms_to(twilio, returnee)[1:]))

    twilio.clear()
    group_text(srv, 5551001, "/release", first_post(ticket.id))
    assert tickets.get(ticket.id).status == "released"
    back = Renderer("ar").render("utter_handoff_back")
    assert wait_until(lambda: sms_to(twilio, returnee)) in ([back], [prefer_gsm7(back)])
    assert tracker(srv, returnee)["paused"] is False
    twilio.clear()
    twilio_message(srv, returnee, "كيف أسجل مشروعي؟")
    assert sms_to(twilio, returnee), "the bot answers again"
    events = tracker(srv, returnee)["events"]
    last_question = max(i for i, e in enumerate(events) if e["event"] == "user")
    actions = [e["name"] for e in events[last_question:] if e["event"] == "action"]
    assert actions == ["action_answer_faq", "action_listen"], actions  # an answer, not a loop of fallbacks


def test_telegram_returnee_in_french_to_an_sms_advisor(server, stand_ins):
    telegram, twilio = stand_ins
    srv = server["server"]
    omar_phone = "+21698000222"
    omar = register("Omar Kacem", "sms", omar_phone, ("fr",))
    returnee = 5552001
    telegram.clear()
    twilio.clear()
    private_text(srv, returnee, "fr", "Bonjour, je voudrais parler à un conseiller s'il vous plaît")
    assert handoff_confirmation("fr", telegram_to(telegram, returnee))
    ticket = tickets.active_for(str(returnee))
    assert (ticket.channel, ticket.language) == ("telegram", "fr")
    assert wait_until(lambda: [b for b in sms_to(twilio, omar_phone) if f"#{ticket.id}" in b and "TAKE" in b])

    twilio_message(srv, omar_phone, f"#{ticket.id} TAKE")
    assert tickets.get(ticket.id).advisor_id == omar.id
    twilio_message(srv, omar_phone, f"#{ticket.id} Bonjour, je regarde votre dossier")
    expected = Renderer("fr").render("utter_handoff_advisor_message",
                                     {"advisor": "Omar", "text": "Bonjour, je regarde votre dossier"})
    assert expected in wait_until(lambda: telegram_to(telegram, returnee)[1:])

    private_text(srv, returnee, "fr", "Merci beaucoup, j'attends")
    assert wait_until(lambda: [b for b in sms_to(twilio, omar_phone) if "j'attends" in b])

    telegram.clear()
    twilio_message(srv, omar_phone, f"#{ticket.id} CLOSE resolved")
    closed = tickets.get(ticket.id)
    assert (closed.status, closed.resolution) == ("closed", "resolved") and closed.closed_at is not None
    assert Renderer("fr").render("utter_handoff_back") in wait_until(lambda: telegram_to(telegram, returnee))

    twilio.clear()
    twilio_message(srv, omar_phone, "HELP")
    assert "#42 TAKE" in "".join(sms_to(twilio, omar_phone))


def test_an_outsider_cannot_take_or_answer(server, stand_ins, caplog):
    telegram, twilio = stand_ins
    srv = server["server"]
    returnee = "+21650300003"
    twilio_message(srv, returnee, "أريد التحدث مع مستشار من فضلك")
    ticket = tickets.active_for(returnee)
    post_id = first_post(ticket.id)
    twilio.clear()
    status, body = press(srv, 5559999, f"take:{ticket.id}")
    assert json.loads(body) == {"status": "refused"}
    group_text(srv, 5559999, "hello I am not an advisor", post_id)
    twilio_message(srv, "+21698000999", f"#{ticket.id} I will answer instead")
    assert tickets.get(ticket.id).status == "open" and tickets.get(ticket.id).advisor_id is None
    assert sms_to(twilio, returnee) == []
    refusal = Renderer("en").render("desk.not_advisor")
    alerts = [r.params.get("text") for r in telegram.sent("answerCallbackQuery")]
    assert Renderer("ar").render("desk.not_advisor") in alerts, alerts
    assert sms_to(twilio, "+21698000999")  # told they cannot
    assert refusal  # the key exists in the source catalog


def test_two_advisors_racing_for_one_ticket(server, stand_ins):
    telegram, twilio = stand_ins
    srv = server["server"]
    register("Sami", "telegram", "5551101")
    register("Leila", "telegram", "5551102")
    returnee = "+21650300004"
    twilio_message(srv, returnee, "أحتاج مستشار من فضلك")
    ticket = tickets.active_for(returnee)
    results = {}
    barrier = threading.Barrier(2)

    def take(user_id):
        barrier.wait()
        results[user_id] = json.loads(press(srv, user_id, f"take:{ticket.id}")[1])["status"]

    threads = [threading.Thread(target=take, args=(u,)) for u in (5551101, 5551102)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results.values()) == ["refused", "taken"]
    winner = next(u for u, r in results.items() if r == "taken")
    loser = 5551102 if winner == 5551101 else 5551101
    twilio.clear()
    group_text(srv, loser, "I answer too", first_post(ticket.id))
    assert sms_to(twilio, returnee) == []
    holder = tickets.get(ticket.id)
    assert holder.status == "claimed" and holder.advisor == ("Sami" if winner == 5551101 else "Leila")


def test_a_restart_in_the_middle_of_a_handoff(server, stand_ins):
    telegram, twilio = stand_ins
    register("Nour", "telegram", "5551201")
    srv = server["server"]
    returnee = "+21650300005"
    twilio_message(srv, returnee, "بغيت نحكي مع مستشار")
    ticket = tickets.active_for(returnee)
    first_post(ticket.id)
    press(srv, 5551201, f"take:{ticket.id}")
    assert tickets.get(ticket.id).status == "claimed"

    srv.stop()
    srv = server["server"] = server["start"]()
    assert tracker(srv, returnee)["paused"] is True
    twilio.clear()
    twilio_message(srv, returnee, "هل ما زلت هنا؟")
    assert sms_to(twilio, returnee) == []
    assert wait_until(lambda: [p for p in group_posts(telegram) if "ما زلت هنا" in p.params["text"]])
    group_text(srv, 5551201, "نعم، أنا هنا", tickets.first_post(ticket.id, str(GROUP)))
    assert wait_until(lambda: [b for b in sms_to(twilio, returnee) if "أنا هنا" in b])
    assert tickets.get(ticket.id).status == "claimed"


def test_silence_hands_the_conversation_back(server, stand_ins, database_url):
    _, twilio = stand_ins
    srv = server["server"]
    register("Hedi", "telegram", "5551301")
    returnee = "+21650300006"
    twilio_message(srv, returnee, "أريد التحدث مع مستشار")
    ticket = tickets.active_for(returnee)
    press(srv, 5551301, f"take:{ticket.id}")
    twilio.clear()
    from bot import storage

    with storage.session() as db, db.begin():  # an hour without a word
        db.execute(sa.update(tickets.Ticket).where(tickets.Ticket.id == ticket.id).values(
            last_activity_at=storage.utcnow() - __import__("datetime").timedelta(hours=1)))
    assert wait_until(lambda: tickets.get(ticket.id).status == "released")
    back = Renderer("ar").render("utter_handoff_back")
    assert wait_until(lambda: sms_to(twilio, returnee)) in ([back], [prefer_gsm7(back)])
    assert tracker(srv, returnee)["paused"] is False


def test_two_fallbacks_in_a_row_and_a_sensitive_message_go_to_an_advisor(server, stand_ins):
    _, twilio = stand_ins
    srv = server["server"]
    stuck = f"+2165031{uuid.uuid4().int % 10000:04d}"
    twilio_message(srv, stuck, "Hello")
    twilio_message(srv, stuck, "zxqv blorp wuggle")
    assert tickets.active_for(stuck) is None
    twilio_message(srv, stuck, "flibber jabber quonk")
    ticket = tickets.active_for(stuck)
    assert ticket is not None and ticket.reason == "repeated_fallback"

    worried = "+21650300008"
    twilio.clear()
    twilio_message(srv, worried, "They threatened me because I cannot repay the loan")
    ticket = tickets.active_for(worried)
    assert ticket is not None and ticket.reason == "sensitive"
    assert Renderer("en").render("utter_handoff_sensitive") in "\n".join(sms_to(twilio, worried)) or \
        prefer_gsm7(Renderer("en").render("utter_handoff_sensitive")) in "\n".join(sms_to(twilio, worried))


def test_a_ticket_still_waiting_is_announced_again(server, stand_ins):
    telegram, twilio = stand_ins
    srv = server["server"]
    returnee = "+21650300009"
    twilio_message(srv, returnee, "أريد التحدث مع مستشار من فضلك")
    ticket = tickets.active_for(returnee)
    assert wait_until(lambda: announced(telegram, ticket.id))
    from bot import storage

    with storage.session() as db, db.begin():  # nobody took it for eleven minutes
        db.execute(sa.update(tickets.Ticket).where(tickets.Ticket.id == ticket.id).values(
            announced_at=storage.utcnow() - __import__("datetime").timedelta(minutes=11)))
    again = Renderer("ar").render("desk.waiting", {"ticket": ticket.id, "minutes": 0}).split("(")[0]
    assert wait_until(lambda: [p for p in announced(telegram, ticket.id) if p.params["text"].startswith(again)])
    assert len(announced(telegram, ticket.id)) == 2


def test_forget_me_deletes_what_the_desk_posted_about_the_person(server, stand_ins):
    telegram, twilio = stand_ins
    srv = server["server"]
    register("Salma", "telegram", "5551401", ("en",))
    returnee = "+21650300010"
    twilio_message(srv, returnee, "I want to talk to an advisor please")
    ticket = tickets.active_for(returnee)
    assert wait_until(lambda: announced(telegram, ticket.id))
    press(srv, 5551401, f"take:{ticket.id}")
    twilio_message(srv, returnee, "the loan is in the name of my brother Karim")
    assert wait_until(lambda: [p for p in group_posts(telegram) if "Karim" in p.params["text"]])
    group_text(srv, 5551401, "/release", first_post(ticket.id))
    assert tickets.get(ticket.id).status == "released"
    from bot import storage

    with storage.session() as db:
        posts = sorted(db.execute(sa.select(tickets.TicketPost.message_id).where(
            tickets.TicketPost.ticket_id == ticket.id)).scalars(), key=int)
    assert len(posts) >= 2
    too_old = posts[0]  # Telegram lets a bot delete only for 48 hours: this one is blanked
    telegram.fail("deleteMessage", 400, "Bad Request: message can't be deleted for everyone", message_id=too_old)

    twilio_message(srv, returnee, "delete my data")
    twilio_message(srv, returnee, "yes")

    def deleted():
        return {str(r.params["message_id"]) for r in telegram.sent("deleteMessage")
                if str(r.params.get("chat_id")) == str(GROUP)}

    assert wait_until(lambda: deleted() >= set(posts[1:])), (deleted(), posts)
    blanked = wait_until(lambda: [r for r in telegram.sent("editMessageText")
                                  if str(r.params.get("message_id")) == too_old])
    assert blanked[0].params["text"] == Desk.staff_renderer().gettext("desk.post_erased")
    assert wait_until(lambda: tickets.posts_to_erase() == [])
    assert tickets.get(ticket.id).sender_id == ""


def webchat(server, sender: str, text: str) -> list:
    status, body = post(f"{server.url}/webhooks/webchat/webhook",
                        json.dumps({"sender": sender, "message": text, "language": "en-GB"}).encode(),
                        {"Content-Type": "application/json"})
    assert status == 200, body
    return json.loads(body)


def desk_messages(server, query: str) -> tuple:
    try:
        with urllib.request.urlopen(f"{server.url}/webhooks/webchat/messages?{query}", timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_web_chat_user_sees_the_advisors_reply_without_writing_first(server, stand_ins):
    telegram, _ = stand_ins
    srv = server["server"]
    register("Nadia", "telegram", "5551501", ("en",))
    sender = f"web-{uuid.uuid4().hex[:16]}"
    webchat(srv, sender, "hello")
    webchat(srv, sender, "I want to talk to an advisor please")
    ticket = tickets.active_for(sender)
    assert wait_until(lambda: announced(telegram, ticket.id))
    press(srv, 5551501, f"take:{ticket.id}")
    status, before = desk_messages(srv, f"sender={sender}&after=0")
    assert status == 200

    group_text(srv, 5551501, "Hello, I am looking at your file now", first_post(ticket.id))
    expected = Renderer("en").render("utter_handoff_advisor_message",
                                     {"advisor": "Nadia", "text": "Hello, I am looking at your file now"})

    def new():
        return [m for m in desk_messages(srv, f"sender={sender}&after=0")[1]["messages"] if m not in before["messages"]]

    arrived = wait_until(new)
    assert [m["text"] for m in arrived] == [expected]
    assert desk_messages(srv, f"sender={sender}&after={arrived[-1]['timestamp']}") == (200, {"messages": []})
    assert desk_messages(srv, f"sender=web-{uuid.uuid4().hex[:16]}&after=0") == (200, {"messages": []})
    for bad in ("after=0", "sender=x&after=0", f"sender={sender}&after=soon", f"sender={sender}&after=nan"):
        status, answer = desk_messages(srv, bad)
        assert status == 400 and "error" in answer, bad


@pytest.mark.skipif(not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
                    reason="chromium and chromedriver are not installed (scripts/install-chromium.sh)")
def test_the_web_chat_page_shows_the_advisors_reply_by_itself(server, stand_ins, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    telegram, _ = stand_ins
    srv = server["server"]
    register("Karim", "telegram", "5551601", ("en",))
    browser.get(f"{srv.url}/webhooks/webchat/")
    field = browser.find_element(By.ID, "text")
    field.send_keys("I want to talk to an advisor please\n")
    sender = WebDriverWait(browser, 20).until(lambda b: b.execute_script(
        "return localStorage.getItem('assistant-sender')"))
    ticket = wait_until(lambda: tickets.active_for(sender))
    assert wait_until(lambda: announced(telegram, ticket.id))
    press(srv, 5551601, f"take:{ticket.id}")
    group_text(srv, 5551601, "Salam, I will help you with the grant", first_post(ticket.id))
    expected = Renderer("en").render("utter_handoff_advisor_message",
                                     {"advisor": "Karim", "text": "Salam, I will help you with the grant"})

    def bubbles(driver):
        return [b.text for b in driver.find_elements(By.CSS_SELECTOR, ".msg.bot")]

    WebDriverWait(browser, 20).until(lambda b: expected in bubbles(b))  # the page asks every 5 s
    assert bubbles(browser).count(expected) == 1

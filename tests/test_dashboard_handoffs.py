"""The dashboard's handoff page and admin forms against the real handoff service, retention of
bot texts, and pages that load nothing from other hosts.

Tickets are made by `bot.handoff.tickets` itself (open, claim, reply, release, close), on
SQLite and on PostgreSQL, so the page follows the lifecycle the desk really writes.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import threading
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

import phonenumbers
import pytest
import requests
import sqlalchemy as sa

from bot import storage
from bot.dashboard import admin, handoffs, retention
from bot.dashboard.filters import Filters
from bot.handoff import advisors, tickets
from tests.test_dashboard import CONVERSATION, T0, insert_events, refresh
from tests.test_dashboard_support import (ADMIN, DEMO_DAYS, DEMO_END, STAFF, Server, csrf_of, demo_range,
                                          drop_postgres_database, login, make_demo_db, postgres_database)

DAY = dt.date(2025, 2, 3)
START = dt.datetime(2025, 2, 3, 9, 0, tzinfo=dt.timezone.utc)


def at(minutes: float) -> dt.datetime:
    """START plus some minutes."""
    return START + dt.timedelta(minutes=minutes)


class project_database:
    """Points `bot.storage` (and so the handoff service) at `url` while in the block."""

    def __init__(self, url: str) -> None:
        self.url, self.before = url, None

    def __enter__(self) -> str:
        self.before = os.environ.get("DATABASE_URL")
        os.environ["DATABASE_URL"] = self.url
        storage.engine.cache_clear()
        return self.url

    def __exit__(self, *exc) -> None:
        if self.before is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = self.before
        storage.engine.cache_clear()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def handoff_url(request, tmp_path_factory):
    """A migrated database with a known day of tickets, written by the handoff service."""
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('handoffs') / 'handoffs.db'}"
    else:
        name = f"dashboard_handoffs_{threading.get_native_id()}"
        url = postgres_database(name)
        if url is None:
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432")
    storage.upgrade(url)
    with project_database(url):
        _known_day()
    yield url
    if name:
        drop_postgres_database(name)


def _known_day() -> None:
    """Six tickets with every ending the desk knows; the comments give each figure."""
    amal = advisors.add("Amal Haddad", "telegram", "5550001")
    bashir = advisors.add("Bashir Noori", "sms", "+93 70 123 4567")

    def opened(sender, minutes, channel="sms", language="ar"):
        return tickets.open_ticket(sender, "user_request", channel, language, "TN", "sample-tn", now=at(minutes)).id

    # 1: Amal replies after 5 minutes and says bye (released) at 24: resolution 24
    one = opened("+21620000001", 0)
    assert tickets.claim(one, amal.id, amal.name, now=at(3))
    tickets.record_reply(one, amal.id, now=at(5))
    assert tickets.release(one, amal.id, now=at(24))
    # 2: Amal replies after 3 minutes, closes at 91: resolution 90
    two = opened("+21620000002", 1)
    assert tickets.claim(two, amal.id, amal.name, now=at(2))
    tickets.record_reply(two, amal.id, now=at(4))
    assert tickets.close(two, amal.id, "resolved", now=at(91))
    # 3: Bashir replies after 10 minutes and still holds it: open, not waiting
    three = opened("+21620000003", 2)
    assert tickets.claim(three, bashir.id, bashir.name, now=at(10))
    tickets.record_reply(three, bashir.id, now=at(12))
    # 4: nobody has taken it: open and waiting since minute 3 (WhatsApp, Farsi)
    opened("whatsapp:+93700000004", 3, "whatsapp", "fa")
    # 5: Bashir closes it without taking it (a duplicate) at 44: resolution 40, no reply
    five = opened("+21620000005", 4)
    assert tickets.close(five, bashir.id, "duplicate", now=at(44))
    # 6: Amal replies after 3 minutes, the desk hands it back after a silence at 68: resolution 63
    six = opened("+21620000006", 5)
    assert tickets.claim(six, amal.id, amal.name, now=at(6))
    tickets.record_reply(six, amal.id, now=at(8))
    assert tickets.release(six, None, now=at(68))
    # a ticket of another day, outside the range but still waiting: it is in the queue
    tickets.open_ticket("+21620000007", "sensitive", "sms", "ar", "TN", "sample-tn", now=at(-60 * 24))


def test_the_page_follows_the_ticket_lifecycle(handoff_url):
    with storage.engine(handoff_url).connect() as db:
        page = handoffs.handoffs(db, Filters(DAY, DAY), now=at(100))
    # replies 5, 3, 10, 3 -> median 4, p90 5 + 0.7 * (10 - 5); resolutions 24, 90, 40, 63 (released ones too)
    assert page.totals["requests"] == 6
    assert (page.totals["reply_median"], page.totals["reply_p90"]) == (4.0, 8.5)
    assert (page.totals["resolution_median"], page.totals["resolution_p90"]) == (51.5, 81.9)
    # open now: 3 (held), 4 (waiting) and the older waiting one; released and closed ones are not
    assert (page.totals["open"], page.totals["waiting"]) == (3, 2)
    assert page.tables["queue"].rows == [("sms", "ar", 2, 1, 1540.0), ("whatsapp", "fa", 1, 1, 97.0)]
    assert dict(page.tables["outcomes"].rows) == {"open": 1, "claimed": 1, "released": 2, "closed": 2}
    # Amal: replies 5, 3, 3 and resolutions 24, 90, 63; Bashir: reply 10, resolution 40, one held now
    assert page.tables["advisors"].columns == handoffs.ADVISOR_COLUMNS
    assert page.tables["advisors"].rows == [("Amal Haddad", 3, 0, 3.0, 4.6, 63.0, 84.6),
                                            ("Bashir Noori", 2, 1, 10.0, 10.0, 40.0, 40.0)]


def test_the_page_filters_by_segment(handoff_url):
    with storage.engine(handoff_url).connect() as db:
        farsi = handoffs.handoffs(db, Filters(DAY, DAY, language="fa"), now=at(100))
        sms = handoffs.handoffs(db, Filters(DAY, DAY, channel="sms", programme="sample-tn"), now=at(100))
        recent = handoffs.recent(db, Filters(DAY, DAY))
    assert farsi.totals["requests"] == 1 and farsi.totals["reply_median"] is None
    assert farsi.tables["queue"].rows == [("whatsapp", "fa", 1, 1, 97.0)]
    assert sms.totals["requests"] == 5 and sms.totals["open"] == 2
    # the duplicate closed without a claim carries no name on the ticket: the registry gives it
    assert ("closed", "Bashir Noori") in {(row[5], row[6]) for row in recent.rows}


def test_transcript_window_ends_when_the_ticket_ends(handoff_url):
    with storage.engine(handoff_url).connect() as db:
        first = db.execute(sa.select(tickets.Ticket.id).order_by(tickets.Ticket.id)).scalars().first()
        sender, begin, finish = handoffs.transcript_window(db, first)
    assert sender == "+21620000001"
    assert (begin, finish) == (at(-60).timestamp(), at(24 + 10).timestamp())


# -- advisors added on the dashboard are the ones the desk finds -------------------------------

def test_advisor_form_values_are_normalised_or_refused():
    values = admin.advisor_values({"name": "Karim", "channel": "whatsapp", "contact": "+216 20 345 101"}, ["ar"])
    assert values["contact"] == "whatsapp:+21620345101"
    values = admin.advisor_values({"name": "Sana", "channel": "sms", "contact": "00 92 321 123 4302"}, ["ur"])
    assert values["contact"] == "+923211234302"
    values = admin.advisor_values({"name": "Farid", "channel": "telegram", "contact": "\u200f٧١٠٠٠٠٠٢٠١"}, ["fa"])
    assert values["contact"] == "7100000201"
    for channel, contact, code in [("telegram", "@farid", "contact_telegram"),
                                   ("telegram", "1" * 40, "contact_telegram"),
                                   ("sms", "20 345 101", "contact_phone"), ("whatsapp", "call me", "contact_phone"),
                                   ("sms", "+1" + "2" * 40, "contact_phone")]:
        with pytest.raises(admin.AdvisorError) as error:
            admin.advisor_values({"name": "X", "channel": channel, "contact": contact}, ["en"])
        assert str(error.value) == code, contact


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory):
    """A small demo history behind a running dashboard."""
    folder = tmp_path_factory.mktemp("demo-handoffs")
    url = f"sqlite:///{folder / 'demo.db'}"
    make_demo_db(url)
    server = Server(url, folder / "server.log")
    yield server, url
    server.stop()


def test_advisors_added_on_the_dashboard_are_found_by_the_desk(demo_site):
    server, url = demo_site
    client = login(server.base, ADMIN)
    token = csrf_of(client.get(f"{server.base}/admin/advisors").text)
    for channel, typed in [("whatsapp", "+216 20 999 101"), ("sms", "+92 300 999 4302"), ("telegram", "7199000001")]:
        reply = client.post(f"{server.base}/admin/advisors", data={
            "csrf": token, "name": f"New {channel}", "channel": channel, "contact": typed, "programme": "",
            "languages": ["ar", "fr"]})
        assert reply.status_code == 200 and f"New {channel}" in reply.text
    refused = client.post(f"{server.base}/admin/advisors", data={
        "csrf": token, "name": "No prefix", "channel": "sms", "contact": "20 999 101", "languages": ["ar"]})
    assert refused.status_code == 400 and "international format, with the country code" in refused.text
    refused = client.post(f"{server.base}/admin/advisors", data={
        "csrf": token, "name": "Username", "channel": "telegram", "contact": "@karim", "languages": ["ar"]})
    assert refused.status_code == 400 and "numeric Telegram user id" in refused.text
    again = client.post(f"{server.base}/admin/advisors", data={
        "csrf": token, "name": "New whatsapp again", "channel": "whatsapp", "contact": "whatsapp:+21620999101",
        "languages": ["ar"]})
    assert again.status_code == 200
    with project_database(url):
        # as Twilio and Telegram report the sender
        found = advisors.find("whatsapp", "whatsapp:+21620999101")
        assert found is not None and found.name == "New whatsapp again"  # the same row, updated
        assert advisors.find("sms", "+923009994302").name == "New sms"
        assert advisors.find("telegram", "7199000001").name == "New telegram"
        with storage.engine(url).connect() as db:
            assert db.execute(sa.text("SELECT count(*) FROM advisors WHERE contact = 'whatsapp:+21620999101'")
                              ).scalar() == 1


# -- the demo data looks like what the bot writes ------------------------------------------------

def test_demo_advisors_are_real_contacts_the_desk_finds(demo_site):
    _, url = demo_site
    with project_database(url):
        for advisor in advisors.all_advisors():
            if advisor.name.startswith("New "):
                continue
            if advisor.channel != "telegram":
                number = phonenumbers.parse(advisor.contact.replace("whatsapp:", ""))
                assert phonenumbers.is_valid_number(number), advisor
            found = advisors.find(advisor.channel, advisor.contact.replace("whatsapp:", "")
                                  if advisor.channel == "sms" else advisor.contact)
            assert found is not None and found.id == advisor.id


def test_demo_tickets_follow_the_bot_and_the_desk(demo_site):
    _, url = demo_site
    engine = storage.engine(url)
    with engine.connect() as db:
        rows = db.execute(sa.select(tickets.Ticket.__table__)).all()
        registered = set(db.execute(sa.text("SELECT id FROM advisors")).scalars())
        posts = set(db.execute(sa.text("SELECT DISTINCT ticket_id FROM ticket_posts")).scalars())
        pauses = db.execute(sa.text("SELECT count(*) FROM events WHERE type_name = 'pause'")).scalar()
        advisor_lines = [json.loads(d) for d in db.execute(sa.text(
            "SELECT data FROM events WHERE type_name = 'bot' AND data LIKE '%\"ticket\"%'")).scalars()]
    assert {row.reason for row in rows} == set(tickets.REASONS)
    assert {"released", "closed"} <= {row.status for row in rows}
    assert pauses == len(rows)  # every handoff paused its conversation
    assert posts == {row.id for row in rows}
    for row in rows:
        assert row.status in handoffs.STATUSES
        if row.status in ("claimed", "released", "closed"):
            assert row.advisor_id in registered
        if row.status == "released":
            assert row.released_at is not None and row.closed_at is None
        if row.status == "closed":
            assert row.closed_at is not None and row.resolution
        if row.first_reply_at is not None:
            assert row.claimed_at <= row.first_reply_at
    assert {line["metadata"]["ticket"] for line in advisor_lines} <= {row.id for row in rows}
    assert all(line["text"] and "{" not in line["text"] for line in advisor_lines)


def test_the_handoff_page_of_the_demo_shows_its_tickets(demo_site):
    server, url = demo_site
    client = login(server.base, STAFF)
    html = client.get(f"{server.base}/handoffs?{demo_range()}").text
    start = DEMO_END - dt.timedelta(days=DEMO_DAYS - 1)
    with storage.engine(url).connect() as db:
        page = handoffs.handoffs(db, Filters(start, DEMO_END))
        requests_in_range = db.execute(sa.select(sa.func.count()).select_from(tickets.Ticket.__table__)).scalar()
    assert page.totals["requests"] == requests_in_range > 20
    assert page.totals["reply_median"] > 0 and page.totals["resolution_p90"] >= page.totals["resolution_median"]
    tiles = {name: value for value, name in
             re.findall(r'<span class="value">([^<]*)</span><span class="name">([^<]*)</span>', html)}
    assert tiles["Requests"] == f"{requests_in_range:,}"
    for reason in tickets.REASONS:
        assert f">{reason}<" in html
    rows = list(csv.reader(io.StringIO(client.get(f"{server.base}/csv/handoffs/advisors?{demo_range()}").text)))
    assert tuple(rows[0]) == handoffs.ADVISOR_COLUMNS
    assert [r[0] for r in rows[1:]] == [r[0] for r in page.tables["advisors"].rows] and len(rows) > 3
    assert sum(int(r[1]) for r in rows[1:]) == sum(r[1] for r in page.tables["advisors"].rows)


# -- retention ------------------------------------------------------------------------------------

def test_retention_blanks_bot_and_advisor_texts_and_media_links(tmp_path):
    url = f"sqlite:///{tmp_path / 'retention.db'}"
    storage.upgrade(url)
    engine = storage.engine(url)
    buttons = [{"title": "Loans", "payload": "/faq"}]
    events = list(CONVERSATION) + [
        (300, {"event": "bot", "text": "Your repayment: 183.33 TND a month", "metadata": {"utter_action": "utter_x"},
               "data": {"buttons": buttons, "custom": {"amount": "2000"}, "image": None}}),
        (400, {"event": "bot", "text": "Amal: I will call the office for you",
               "metadata": {"ticket": 3, "advisor": "Amal"}, "data": {}}),
        (500, {"event": "user", "text": "[media]", "input_channel": "whatsapp", "parse_data": {"text": "[media]"},
               "metadata": {"media": [{"type": "image/jpeg", "url": "https://api.twilio.com/Media/ME1"}]}}),
    ]
    insert_events(engine, "+21650333999", events)
    insert_events(engine, "+21650333999", [(0, {"event": "bot", "text": "recent answer", "data": {}})],
                  start=T0 + 40 * 86400 - 60)
    refresh(engine)
    with engine.connect() as db:
        before = db.execute(sa.text("SELECT sum(messages), sum(conversations) FROM dash_user_days")).one()
    blanked = retention.apply(engine, days=30, now=dt.datetime.fromtimestamp(T0, dt.timezone.utc)
                              + dt.timedelta(days=40))
    assert blanked["events"] == 7 + 3
    with engine.connect() as db:
        rows = [(kind, json.loads(data)) for kind, data in db.execute(sa.text(
            "SELECT type_name, data FROM events WHERE type_name IN ('user', 'bot') ORDER BY id")).all()]
        after = db.execute(sa.text("SELECT sum(messages), sum(conversations) FROM dash_user_days")).one()
    old, recent = rows[:-1], rows[-1]
    assert all(data["text"] == "" for _, data in old)
    assert old[-3][1]["data"] == {"buttons": None, "custom": None, "image": None}
    assert old[-3][1]["metadata"] == {"utter_action": "utter_x"}
    assert old[-2][1]["metadata"] == {"ticket": 3, "advisor": "Amal"}
    assert old[-1][1]["metadata"]["media"] == [{"type": "image/jpeg"}]
    assert "twilio.com" not in json.dumps([data for _, data in old])
    assert recent[1]["text"] == "recent answer"
    assert tuple(after) == tuple(before)
    assert retention.apply(engine, days=30, now=dt.datetime.fromtimestamp(T0, dt.timezone.utc)
                           + dt.timedelta(days=40))["events"] == 0


# -- nothing from other hosts --------------------------------------------------------------------

class _Links(HTMLParser):
    """Every address an HTML page would load or send to, and its inline styles."""

    ATTRIBUTES = {"src", "href", "action", "formaction", "srcset", "poster", "data", "xlink:href", "background",
                  "manifest", "ping", "imagesrcset"}

    def __init__(self) -> None:
        super().__init__()
        self.addresses, self.styles, self._in_style = [], [], False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in self.ATTRIBUTES:
                self.addresses += [part.strip().split(" ")[0] for part in value.split(",")] if "srcset" in name \
                    else [value.strip()]
            elif name == "style":
                self.styles.append(value)
            elif name == "content" and "url=" in value.lower():
                self.addresses.append(value.lower().split("url=", 1)[1].strip())
        self._in_style = tag == "style"

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self._in_style = False

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""", re.I)


def foreign(base: str, page: str, html: str) -> list:
    """The addresses of a page that lead to another host (or scheme) than the dashboard's."""
    links = _Links()
    links.feed(html)
    addresses = links.addresses + [a or b for style in links.styles for a, b in _CSS_URL.findall(style)]
    own = urlparse(base)
    bad = []
    for address in addresses:
        if address.startswith(("#", "data:", "mailto:")):
            continue
        target = urlparse(urljoin(base + page, address))
        if (target.scheme, target.netloc) != (own.scheme, own.netloc):
            bad.append(address)
    return bad


def test_pages_load_nothing_from_other_hosts(demo_site):
    server, url = demo_site
    base = server.base
    anonymous = requests.get(f"{base}/login")
    client = login(base, ADMIN)
    questions = client.get(f"{base}/questions?{demo_range()}").text
    handoff_page = client.get(f"{base}/handoffs?{demo_range()}").text
    question = re.search(r"/unanswered/(\d+)/context", questions).group(1)
    ticket = re.search(r"/handoffs/(\d+)/transcript", handoff_page).group(1)
    pages = {"/login": anonymous.text, f"/questions?{demo_range()}": questions,
             f"/handoffs?{demo_range()}": handoff_page}
    for path in ["/", f"/?{demo_range()}&split=language", f"/calculator?{demo_range()}", f"/funnel?{demo_range()}",
                 "/admin/accounts", "/admin/advisors", f"/unanswered/{question}/context",
                 f"/handoffs/{ticket}/transcript", "/nowhere", "/?start=bad"]:
        pages[path] = client.get(base + path).text
    styles = []
    for path, html in pages.items():
        assert "<html" in html, path
        assert not foreign(base, path, html), (path, foreign(base, path, html))
        styles += [a for a in re.findall(r'href="(/static/[^"]+\.css)"', html)]
    assert styles
    for sheet in set(styles):
        css = client.get(base + sheet).text
        assert "{" in css, sheet
        assert not [a or b for a, b in _CSS_URL.findall(css)
                    if not (a or b).startswith(("data:", "#")) and urlparse(a or b).netloc], sheet


def test_the_external_link_check_can_fail():
    base = "http://127.0.0.1:5006"
    assert foreign(base, "/", '<link rel="stylesheet" href="https://cdn.example.com/x.css">')
    assert foreign(base, "/", '<script src="//cdn.example.com/x.js"></script>')
    assert foreign(base, "/", "<style>@import 'https://fonts.googleapis.com/css?family=Roboto';</style>")
    assert foreign(base, "/", '<div style="background: url(https://example.com/a.png)"></div>')
    assert foreign(base, "/", '<img srcset="/a.png 1x, https://example.com/b.png 2x">')
    assert not foreign(base, "/x", '<a href="/csv/a?b=c">x</a><img src="data:image/png;base64,AA"><a href="#top">')
    assert not foreign(base, "/x", '<svg xmlns="http://www.w3.org/2000/svg"></svg>')

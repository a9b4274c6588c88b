"""The dashboard's figures, privacy, accounts and HTTP behaviour (the browser tests are apart).

The aggregates are checked two ways: on a hand-made conversation whose every figure is known,
and on a small generated history (SQLite and PostgreSQL) against counts taken straight from
Rasa's events and the project's tables.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import threading
import time
from decimal import Decimal

import pytest
import requests
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from bot import storage
from bot.dashboard import auth, charts, etl, queries, retention
from bot.dashboard import models as m
from bot.dashboard.filters import FilterError, Filters, parse
from tests.test_dashboard_support import (ADMIN, DEMO_END, STAFF, Server, csrf_of, demo_range,
                                          drop_postgres_database, login, make_demo_db, postgres_database)

DAY = dt.date(2025, 1, 6)
T0 = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.timezone.utc).timestamp()


# -- a hand-made conversation ---------------------------------------------------------------

def _user(text, intent, channel="telegram", topic=None, external=False):
    parse_data = {"intent": {"name": intent, "confidence": 0.9}, "entities": [], "text": text}
    if topic:
        parse_data["response_selector"] = {"faq": {"response": {"intent_response_key": topic}}}
    return {"event": "user", "text": text, "parse_data": parse_data, "input_channel": channel,
            "metadata": {"is_external": True} if external else {}}


def insert_events(engine, sender, events, start=T0):
    """Writes events like Rasa's SQL tracker store: (type, data) pairs, a few seconds apart."""
    m.events_table().create(engine, checkfirst=True)
    rows = []
    for i, (offset, data) in enumerate(events):
        data = {**data, "timestamp": start + offset}
        intent = (data.get("parse_data") or {}).get("intent", {}).get("name")
        rows.append({"sender_id": sender, "type_name": data["event"], "timestamp": start + offset,
                     "intent_name": intent, "action_name": data.get("name"), "data": json.dumps(data)})
    with engine.begin() as db:
        db.execute(sa.insert(m.events_table()), rows)


CONVERSATION = [
    (0, {"event": "session_started"}),
    (1, _user("salam", "greet")),
    (2, {"event": "slot", "name": "language", "value": "ar"}),
    (3, {"event": "slot", "name": "country", "value": "TN"}),
    (60, _user("كيفاش ناخذ قرض", "faq", topic="faq/loan_apply")),
    (120, _user("2000 على 12 شهر", "calculate_repayment")),
    (121, {"event": "slot", "name": "loan_calculation",
           "value": {"programme": "sample-tn", "product": "start", "amount": "2000", "repayments": 12,
                     "frequency": "months"}}),
    (180, _user("nheb nahki m3a insen", "request_advisor")),
    (200, _user("EXTERNAL: EXTERNAL_reminder", "EXTERNAL_reminder", external=True)),
    (240, _user("شنوة الطقس", "nlu_fallback")),
    (86400 + 10, _user("ahla", "greet")),  # the next day, a new conversation (more than 4 h later)
]


@pytest.fixture()
def small_engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'small.db'}"
    storage.upgrade(url)
    return storage.engine(url)


def refresh(engine):
    return etl.Refresher(engine).run(lag=0)


def test_aggregates_of_a_known_conversation(small_engine):
    insert_events(small_engine, "+21650111222", CONVERSATION)
    refresh(small_engine)
    with small_engine.connect() as db:
        days = db.execute(sa.select(m.dash_user_days).order_by(m.dash_user_days.c.day)).all()
        labels = dict(db.execute(sa.select(m.dash_label_days.c.label, m.dash_label_days.c.messages)
                                 .where(m.dash_label_days.c.day == DAY)).all())
        calculation = db.execute(sa.select(m.dash_calculations)).one()
        f = Filters(DAY, DAY + dt.timedelta(days=1))
        funnel = queries.funnel(db, f).totals
        overview = queries.overview(db, f).totals
    assert [(d.day, d.channel, d.language, d.programme, d.conversations, d.messages, d.fallbacks, d.is_new)
            for d in days] == [(DAY, "telegram", "ar", "sample-tn", 1, 5, 1, True),
                               (DAY + dt.timedelta(days=1), "telegram", "ar", "sample-tn", 1, 1, 0, False)]
    assert labels == {"greet": 1, "faq/loan_apply": 1, "calculate_repayment": 1, "request_advisor": 1,
                      "nlu_fallback": 1}
    assert (calculation.amount, calculation.currency, calculation.repayments, calculation.product) == \
        (Decimal("2000"), "TND", 12, "start")
    assert funnel == {"loan": 1, "calc": 1, "advisor": 1}
    assert overview == {"active_users": 1, "new_users": 1, "returning_users": 1, "conversations": 2, "messages": 6,
                        "fallback_rate": round(1 / 6, 4)}


def test_refresh_is_incremental_and_counts_once(small_engine):
    insert_events(small_engine, "webchat-1", CONVERSATION[:5])
    refresh(small_engine)
    refresh(small_engine)
    insert_events(small_engine, "webchat-1", CONVERSATION[5:])
    refresh(small_engine)
    with small_engine.connect() as db:
        messages = db.execute(sa.select(sa.func.sum(m.dash_user_days.c.messages))).scalar()
        conversations = db.execute(sa.select(sa.func.sum(m.dash_user_days.c.conversations))).scalar()
    assert (messages, conversations) == (6, 2)


def test_concurrent_refreshes_do_not_double_count(small_engine):
    for n in range(30):
        insert_events(small_engine, f"user-{n}", CONVERSATION, start=T0 + n * 3600)
    errors = []

    def run():
        try:
            refresh(small_engine)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with small_engine.connect() as db:
        assert db.execute(sa.select(sa.func.sum(m.dash_user_days.c.messages))).scalar() == 30 * 6


def test_recent_events_wait_for_the_next_refresh(small_engine):
    now = dt.datetime.now(dt.timezone.utc).timestamp()
    insert_events(small_engine, "late", CONVERSATION[:2], start=now - 5)
    assert etl.Refresher(small_engine).run(lag=60) == 0
    assert etl.Refresher(small_engine).run(lag=0) == 2


def test_the_server_keeps_the_aggregates_fresh(small_engine, tmp_path):
    insert_events(small_engine, "+21650777666", CONVERSATION)
    server = Server(str(small_engine.url), tmp_path / "fresh.log", DASHBOARD_REFRESH_SECONDS="0.5")
    try:
        deadline = time.monotonic() + 20
        messages = None
        while time.monotonic() < deadline and not messages:
            time.sleep(0.3)
            with small_engine.connect() as db:
                messages = db.execute(sa.select(sa.func.sum(m.dash_user_days.c.messages))).scalar()
    finally:
        server.stop()
    assert messages == 6


def test_a_forgotten_user_is_unlinked_but_still_counted(small_engine):
    from bot.dashboard import privacy

    insert_events(small_engine, "+21650555444", CONVERSATION)
    refresh(small_engine)
    assert privacy.forget(small_engine, "+21650555444") == 1
    with small_engine.connect() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(m.dash_senders)).scalar() == 0
        assert db.execute(sa.select(sa.func.sum(m.dash_user_days.c.messages))).scalar() == 6


def test_labels_and_similar_questions():
    assert etl.label_of("faq", {"parse_data": {"response_selector": {"faq": {"response": {
        "intent_response_key": "faq/grant_apply"}}}}}) == "faq/grant_apply"
    assert etl.label_of("faq", {}) == "faq"
    assert etl.label_of(None, {}) == "unknown"
    assert etl.similar_key("Is it raining, today?!", "en") == etl.similar_key("is it  raining today", "en")
    assert etl.similar_key("كيفاش  الطقس؟", "ar") == etl.similar_key("كيفاش الطقس", "ar")
    assert etl.similar_key("hello", "en") != etl.similar_key("hello", "fr")


def test_no_sender_id_in_the_aggregates(small_engine):
    insert_events(small_engine, "+21650999888", CONVERSATION)
    insert_events(small_engine, "987654321", CONVERSATION, start=T0 + 7200)
    refresh(small_engine)
    with small_engine.connect() as db:
        for table in m.AGGREGATES:
            dump = repr(db.execute(sa.select(table)).all())
            assert "21650999888" not in dump and "987654321" not in dump, table.name


# -- the generated history, on SQLite and on PostgreSQL ---------------------------------------

@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo_url(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
        make_demo_db(url)
        yield url
        return
    name = f"dashboard_test_{threading.get_native_id()}"
    url = postgres_database(name)
    if url is None:
        pytest.skip("PostgreSQL is not reachable")
    make_demo_db(url)
    yield url
    drop_postgres_database(name)


def _whole() -> Filters:
    return Filters(DEMO_END - dt.timedelta(days=119), DEMO_END)


def _raw_user_events(engine):
    """(sender, label, language of the sender's profile) of every user message, from Rasa's events."""
    with engine.connect() as db:
        languages = dict(db.execute(sa.select(storage.Profile.sender_id, storage.Profile.language)).all())
        rows = db.execute(sa.text("SELECT sender_id, intent_name, data FROM events WHERE type_name = 'user'")).all()
    found = []
    for sender, intent, data in rows:
        data = json.loads(data)
        if (data.get("metadata") or {}).get("is_external"):
            continue
        found.append((sender, etl.label_of(intent, data), languages[sender], data["input_channel"]))
    return found


def test_figures_match_the_events(demo_url):
    engine = storage.engine(demo_url)
    raw = _raw_user_events(engine)
    with engine.connect() as db:
        overview = queries.overview(db, _whole())
        asked = queries.questions(db, Filters(_whole().start, _whole().end, language="ar", channel="telegram"))
    assert overview.totals["messages"] == len(raw)
    assert overview.totals["active_users"] == len({sender for sender, *_ in raw})
    assert sum(overview.tables["daily"].column("messages")) == len(raw)
    expected = {}
    for _, label, language, channel in raw:
        if language == "ar" and channel == "telegram":
            expected[label] = expected.get(label, 0) + 1
    assert {label: n for label, n, _ in asked.tables["labels"].rows} == expected
    by_channel = {row[0]: row[1] for row in overview.tables["by_channel"].rows}
    assert by_channel == {c: len({s for s, _, _, ch in raw if ch == c}) for c in {ch for *_, ch in raw}}


def test_unanswered_and_reminders_match_the_tables(demo_url):
    engine = storage.engine(demo_url)
    q = storage.UnansweredQuestion.__table__
    with engine.connect() as db:
        open_fa = db.execute(sa.select(sa.func.count()).select_from(q)
                             .where(q.c.handled == sa.false(), q.c.language == "fa")).scalar()
        page = queries.questions(db, Filters(_whole().start, _whole().end, language="fa"), limit=10_000)
        statuses = dict(db.execute(sa.text("SELECT status, count(*) FROM reminders GROUP BY status")).all())
        calculator = queries.calculator(db, Filters(_whole().start - dt.timedelta(days=400),
                                                    _whole().end + dt.timedelta(days=400)))
    assert page.totals["unanswered_open"] == open_fa == sum(page.tables["unanswered"].column("similar"))
    assert set(page.tables["unanswered"].column("language")) <= {"fa"}
    assert dict(calculator.tables["reminders"].rows) == statuses
    amounts = calculator.tables["amounts"]
    assert all(p25 <= median <= p75 <= p90 for p25, median, p75, p90 in
               zip(*(amounts.column(c) for c in ("p25", "median", "p75", "p90"))))


def test_funnel_is_a_funnel(demo_url):
    with storage.engine(demo_url).connect() as db:
        totals = queries.funnel(db, _whole()).totals
    assert totals["loan"] >= totals["calc"] >= totals["advisor"] > 0


def test_mark_handled_takes_the_similar_ones(demo_url):
    engine = storage.engine(demo_url)
    with engine.connect() as db:
        table, before = queries.unanswered(db, _whole())
    row = table.dicts()[0]
    with engine.begin() as db:
        assert queries.mark_handled(db, row["id"]) == row["similar"]
    with engine.connect() as db:
        assert queries.unanswered(db, _whole())[1] == before - row["similar"]


# -- retention ---------------------------------------------------------------------------------

def test_retention_blanks_texts_and_keeps_counts(small_engine):
    insert_events(small_engine, "+21650333444", CONVERSATION)
    unanswered = storage.UnansweredQuestion.__table__
    with small_engine.begin() as db:
        db.execute(sa.insert(unanswered).values(text="شنوة الطقس", language="ar", reason="fallback",
                                                created_at=dt.datetime.fromtimestamp(T0 + 240, dt.timezone.utc)))
    refresh(small_engine)
    f = Filters(DAY, DAY + dt.timedelta(days=1))
    with small_engine.connect() as db:
        before = queries.overview(db, f).totals, queries.unanswered(db, f)[1]
    now = dt.datetime.fromtimestamp(T0, dt.timezone.utc) + dt.timedelta(days=40)
    blanked = retention.apply(small_engine, days=30, now=now)
    assert blanked == {"events": 7, "questions": 1}
    with small_engine.connect() as db:
        after = queries.overview(db, f).totals, queries.unanswered(db, f)[1]
        texts = [json.loads(d) for d in db.execute(sa.text("SELECT data FROM events WHERE type_name='user'")).scalars()]
        question = db.execute(sa.select(unanswered.c.text)).scalar()
    assert after == before
    assert all(d["text"] == "" and d["parse_data"]["text"] == "" for d in texts)
    assert question == ""
    assert retention.apply(small_engine, days=30, now=now) == {"events": 0, "questions": 0}


def test_retention_command(small_engine, monkeypatch, capsys):
    from bot.dashboard.__main__ import main

    url = str(small_engine.url)
    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    assert main(["--url", url, "retention"]) == 2
    insert_events(small_engine, "+21650333445", CONVERSATION)
    monkeypatch.setenv("RETENTION_DAYS", "30")
    assert main(["--url", url, "retention"]) == 0
    assert "7 messages" in capsys.readouterr().out


# -- filters and charts ------------------------------------------------------------------------

def test_filters_defaults_and_errors():
    today = dt.date(2025, 5, 31)
    f = parse({}, today)
    assert (f.start, f.end, f.segments) == (dt.date(2025, 5, 2), today, {})
    f = parse({"start": ["2025-01-01"], "end": ["2025-01-31"], "language": ["ps"], "channel": ["all"]}, today)
    assert (f.start, f.end, f.segments) == (dt.date(2025, 1, 1), dt.date(2025, 1, 31), {"language": "ps"})
    for args, code in [({"start": ["2025-13-01"]}, "bad_date"), ({"end": ["yesterday"]}, "bad_date"),
                       ({"start": ["2025-02-01"], "end": ["2025-01-01"]}, "reversed_range"),
                       ({"start": ["2019-01-01"]}, "long_range"), ({"channel": ["fax"]}, "unknown_value"),
                       ({"language": ["de"]}, "unknown_value"), ({"programme": ["x"]}, "unknown_value"),
                       ({"debug": ["1"]}, "unknown_parameter"), ({"start": ["2025-01-01", "2025-01-02"]},
                                                                  "repeated_parameter")]:
        with pytest.raises(FilterError) as error:
            parse(args, today)
        assert error.value.code == code


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["start", "end", "channel", "language", "programme", "split", "x"]),
                       st.lists(st.text(max_size=12), min_size=1, max_size=2)))
def test_filters_reject_bad_input_cleanly(args):
    try:
        f = parse(args, dt.date(2025, 5, 31), extra=("split",))
    except FilterError:
        return
    assert f.start <= f.end


def test_percentiles_and_chart_scales():
    assert queries.percentile([], 0.5) is None
    assert queries.percentile([1, 2, 3, 4], 0.5) == 2.5
    assert queries.percentile([Decimal(10), Decimal(20)], 0.9) == Decimal("19.0")
    chart = charts.line_chart([DAY, DAY + dt.timedelta(days=1)], [("a", [0, 7])])
    assert [t["label"] for t in chart.y_ticks] == ["0", "2", "4", "6", "8"]
    assert chart.series[0]["points"].count(",") == 2
    assert charts.bar_chart([]).empty


# -- accounts ------------------------------------------------------------------------------------

def test_passwords_sessions_and_lockout(small_engine, monkeypatch):
    assert auth._hasher.type.name == "ID" and auth._hasher.memory_cost >= 19456 and auth._hasher.time_cost >= 2
    from argon2 import PasswordHasher

    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))  # fast test
    account = auth.create_account(small_engine, "Nadia", "a long pass phrase", "staff")
    with small_engine.connect() as db:
        stored = db.execute(sa.select(m.staff_accounts.c.password_hash)).scalar()
    assert stored.startswith("$argon2id$") and "a long pass phrase" not in stored
    for bad in [("x", "a long pass phrase", "staff"), ("nadia", "a long pass phrase", "staff"),
                ("omar", "short", "staff"), ("omar", "a long pass phrase", "root")]:
        with pytest.raises(auth.AccountError):
            auth.create_account(small_engine, *bad)
    assert auth.authenticate(small_engine, "nadia", "wrong password!") is None
    assert auth.authenticate(small_engine, "NADIA", "a long pass phrase") == account
    token = auth.start_session(small_engine, account)
    session = auth.session_for(small_engine, token)
    assert session.username == "nadia" and not session.is_admin
    assert auth.session_for(small_engine, token + "x") is None
    auth.set_active(small_engine, "nadia", False)
    assert auth.session_for(small_engine, token) is None
    assert auth.authenticate(small_engine, "nadia", "a long pass phrase") is None
    auth.set_active(small_engine, "nadia", True)
    for _ in range(auth.MAX_FAILURES):
        auth.authenticate(small_engine, "nadia", "wrong password!")
    assert auth.authenticate(small_engine, "nadia", "a long pass phrase") is None  # locked for a while
    with small_engine.begin() as db:
        db.execute(sa.update(m.staff_accounts).values(locked_until=storage.utcnow() - dt.timedelta(seconds=1)))
    assert auth.authenticate(small_engine, "nadia", "a long pass phrase") == account


def test_sessions_expire(small_engine, monkeypatch):
    account = auth.create_account(small_engine, "idle", "a long pass phrase")
    token = auth.start_session(small_engine, account)
    later = storage.utcnow() + dt.timedelta(minutes=auth.idle_minutes() + 1)
    monkeypatch.setattr(auth, "utcnow", lambda: later)
    assert auth.session_for(small_engine, token) is None
    monkeypatch.undo()
    monkeypatch.setenv("DASHBOARD_IDLE_MINUTES", "100000")
    token = auth.start_session(small_engine, account)
    much_later = storage.utcnow() + dt.timedelta(hours=auth.session_hours() + 1)
    monkeypatch.setattr(auth, "utcnow", lambda: much_later)
    assert auth.session_for(small_engine, token) is None


def test_accounts_command(small_engine, monkeypatch, capsys):
    from bot.dashboard.__main__ import main

    url = str(small_engine.url)
    monkeypatch.setattr("sys.stdin", io.StringIO("a long pass phrase\n"))
    assert main(["--url", url, "users", "add", "lina", "--role", "admin", "--password-stdin"]) == 0
    assert main(["--url", url, "users", "disable", "lina"]) == 0
    assert main(["--url", url, "users", "list"]) == 0
    assert "lina" in capsys.readouterr().out
    assert [(a.username, a.role, a.active) for a in auth.accounts(small_engine)] == [("lina", "admin", False)]
    assert main(["--url", url, "users", "enable", "nobody"]) == 1


# -- the web application -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{folder / 'web.db'}"
    make_demo_db(url)
    running = Server(url, folder / "server.log")
    yield running, url
    running.stop()


def test_nothing_is_visible_without_logging_in(server):
    web, _ = server
    for path in ["/", "/questions", "/calculator", "/handoffs", "/funnel", "/admin/accounts", "/admin/advisors",
                 f"/csv/overview/daily?{demo_range()}", "/unanswered/1/context"]:
        reply = requests.get(web.base + path, allow_redirects=False)
        assert reply.status_code == 303 and reply.headers["location"].startswith("/login?next="), path
    assert requests.post(f"{web.base}/unanswered/1/handled", data={"csrf": "x"}).status_code == 403
    page = requests.get(f"{web.base}/questions?{demo_range()}")
    assert page.url.startswith(f"{web.base}/login") and "<table" not in page.text


def test_login_sets_a_safe_cookie_and_logout_ends_it(server):
    web, _ = server
    client = requests.Session()
    token = csrf_of(client.get(f"{web.base}/login").text)
    wrong = client.post(f"{web.base}/login", data={"csrf": token, "username": ADMIN[0], "password": "nope nope nope"})
    assert wrong.status_code == 401
    token = csrf_of(wrong.text)
    assert client.post(f"{web.base}/login", data={"csrf": "forged", "username": ADMIN[0],
                                                  "password": ADMIN[1]}).status_code == 403
    reply = client.post(f"{web.base}/login", data={"csrf": token, "username": ADMIN[0], "password": ADMIN[1],
                                                   "next": "https://evil.example/"}, allow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/"
    cookie = reply.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = client.get(f"{web.base}/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert client.post(f"{web.base}/logout", data={"csrf": "forged"}).status_code == 403
    client.post(f"{web.base}/logout", data={"csrf": csrf_of(page.text)})
    assert client.get(f"{web.base}/", allow_redirects=False).status_code == 303


def test_pages_answer_and_bad_input_is_a_4xx(server):
    web, _ = server
    staff = login(web.base, STAFF)
    for path in ["/", "/questions", "/calculator", "/handoffs", "/funnel", f"/?{demo_range()}&split=programme",
                 f"/questions?{demo_range()}&language=ar&channel=sms&programme=sample-tn"]:
        assert staff.get(web.base + path).status_code == 200, path
    assert "Median time to first reply" in staff.get(f"{web.base}/handoffs").text  # the tickets table exists
    for path, status in [("/?start=2025-02-30", 400), ("/?end=tomorrow", 400), ("/?start=2025-03-01&end=2025-02-01", 400),
                         ("/?language=xx", 400), ("/?channel=", 200), ("/?split=country", 400), ("/?page=2", 400),
                         ("/?start=0001-01-01", 400), ("/csv/overview/secret", 404), ("/csv/nowhere/daily", 404),
                         ("/nowhere", 404), ("/unanswered/x/handled", 404), ("/admin/accounts", 403),
                         ("/admin/advisors", 403), ("/unanswered/1/context", 403), ("/handoffs/1/transcript", 403),
                         ("/?start=%00", 400), ("/?language=%D8%B9", 400)]:
        assert staff.get(web.base + path).status_code == status, path
    assert staff.put(f"{web.base}/").status_code == 405
    assert staff.post(f"{web.base}/unanswered/1/handled", data={}).status_code == 403
    page = staff.get(f"{web.base}/questions").text
    assert staff.post(f"{web.base}/unanswered/999999/handled", data={"csrf": csrf_of(page)}).status_code == 404
    assert staff.post(f"{web.base}/admin/accounts", data={"csrf": csrf_of(page)}).status_code == 403
    foreign = staff.post(f"{web.base}/unanswered/1/handled", data={"csrf": csrf_of(page)},
                         headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403


def test_csv_rows_match_the_database(server):
    web, url = server
    client = login(web.base, STAFF)
    reply = client.get(f"{web.base}/csv/overview/by_language?{demo_range()}&channel=whatsapp")
    assert reply.headers["content-type"].startswith("text/csv")
    assert "attachment" in reply.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(reply.text)))
    assert rows[0] == ["language", "active_users", "conversations", "messages"]
    raw = _raw_user_events(storage.engine(url))
    expected = {}
    for sender, _, language, channel in raw:
        if channel == "whatsapp":
            expected.setdefault(language, set()).add(sender)
    assert {r[0]: int(r[1]) for r in rows[1:]} == {k: len(v) for k, v in expected.items()}


def test_no_phone_number_or_telegram_id_anywhere(server):
    web, url = server
    with storage.engine(url).connect() as db:
        senders = set(db.execute(sa.text("SELECT DISTINCT sender_id FROM events")).scalars())
    admin = login(web.base, ADMIN)
    texts = [admin.get(f"{web.base}{path}?{demo_range()}").text
             for path in ["/", "/questions", "/calculator", "/handoffs", "/funnel"]]
    for page, tables in [("overview", ["daily", "daily_split", "by_channel"]), ("questions", ["unanswered", "labels"]),
                         ("calculator", ["amounts", "reminders"]), ("funnel", ["funnel"])]:
        texts += [admin.get(f"{web.base}/csv/{page}/{t}?{demo_range()}").text for t in tables]
    question = re.search(r'/unanswered/(\d+)/context', texts[1]).group(1)
    context = admin.get(f"{web.base}/unanswered/{question}/context")
    assert context.status_code == 200 and "user-" in context.text and "highlight" in context.text
    texts.append(context.text)
    everything = "\n".join(texts)
    leaked = [s for s in senders if s in everything or s.replace("whatsapp:", "") in everything]
    assert not leaked


def test_right_to_left_messages_carry_their_direction(server):
    web, _ = server
    page = login(web.base, STAFF).get(f"{web.base}/questions?{demo_range()}&language=ar").text
    assert re.search(r'<td class="message" lang="ar" dir="rtl"><bdi>[\u0600-\u06ff]', page)


def test_admin_manages_accounts_and_advisors(server):
    web, _ = server
    admin = login(web.base, ADMIN)
    page = admin.get(f"{web.base}/admin/accounts").text
    token = csrf_of(page)
    created = admin.post(f"{web.base}/admin/accounts", data={"csrf": token, "username": "newcomer", "role": "staff",
                                                            "password": "a fine long password"})
    assert created.status_code == 200 and "newcomer" in created.text
    weak = admin.post(f"{web.base}/admin/accounts", data={"csrf": token, "username": "weak", "role": "staff",
                                                         "password": "short"})
    assert weak.status_code == 400 and "at least 10 characters" in weak.text
    newcomer = login(web.base, ("newcomer", "a fine long password"))
    assert newcomer.get(f"{web.base}/").status_code == 200
    admin.post(f"{web.base}/admin/accounts/newcomer/disable", data={"csrf": token})
    assert newcomer.get(f"{web.base}/", allow_redirects=False).status_code == 303
    assert admin.post(f"{web.base}/admin/accounts/ada/disable", data={"csrf": token}).status_code == 400
    added = admin.post(f"{web.base}/admin/advisors", data={"csrf": token, "name": "Hamid K.", "channel": "telegram",
                                                          "contact": "123456789", "programme": "sample-af",
                                                          "languages": ["fa", "ps"]})
    assert added.status_code == 200 and "Hamid K." in added.text and "fa ps" in added.text
    bad = admin.post(f"{web.base}/admin/advisors", data={"csrf": token, "name": "X", "channel": "fax",
                                                        "contact": "1", "languages": ["fa"]})
    assert bad.status_code == 400


def test_migration_indexes_an_existing_events_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'rasa-first.db'}"
    storage.upgrade(url, "0002")
    engine = storage.engine(url)
    m.events_table().create(engine)
    storage.upgrade(url)
    names = {index["name"] for index in sa.inspect(engine).get_indexes("events")}
    assert set(m.EVENT_INDEXES) <= names


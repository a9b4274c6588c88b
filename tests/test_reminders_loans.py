"""Users' actual loans: staff import their due dates (`python -m bot.reminders import-loan`), and the
user's reminders follow them, through the real Rasa server, action server and worker."""
import datetime as dt
import os
import subprocess
import sys
import urllib.request
import uuid
from decimal import Decimal

from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from bot import loan_book, reminders, storage
from bot.i18n import Renderer
from bot.programme import load_all
from bot.reminder_worker import Worker
from channels.sms import prefer_gsm7
from tests.conftest import ROOT, start_rasa_server
from tests.standins import TwilioStandIn

HEADER = "contact,programme,due_date,amount,currency\n"


def run_import(path, database_url):
    """Runs the command as staff would; returns (exit status, stdout, stderr)."""
    done = subprocess.run([sys.executable, "-m", "bot.reminders", "import-loan", "--file", str(path)], cwd=ROOT,
                          env=dict(os.environ, DATABASE_URL=database_url), capture_output=True, text=True,
                          timeout=120)
    return done.returncode, done.stdout, done.stderr


def stored(contact):
    """(programme, due date, amount, currency) of a contact's stored instalments."""
    with storage.session() as db:
        rows = db.execute(sa.select(loan_book.LoanInstalment).where(loan_book.LoanInstalment.contact == contact)
                          .order_by(loan_book.LoanInstalment.due_date)).scalars()
        return [(r.programme, r.due_date.isoformat(), r.amount, r.currency) for r in rows]


def new_number(prefix="+2162"):
    return f"{prefix}{uuid.uuid4().int % 10**7:07d}"


def test_import_is_idempotent_and_a_new_file_replaces_the_loan(tmp_path, database_url):
    number, telegram_id = new_number(), str(5_570_000_000 + uuid.uuid4().int % 10**8)
    spaced = f"{number[:4]} {number[4:6]} {number[6:9]} {number[9:]}"  # "+216 2x xxx xxx"
    path = tmp_path / "loans.csv"
    path.write_text(HEADER + f"{spaced},sample-tn,2027-01-15,350.000,TND\n"
                             f"{number},sample-tn,2027-02-15,350.000,tnd\n"
                             f"{telegram_id},sample-tn,2027-01-20,120.5,\n", encoding="utf-8")
    for _ in range(2):
        assert run_import(path, database_url) == (0, f"imported 3 instalment(s) of 2 loan(s) from {path}\n", "")
        assert stored(number) == [("sample-tn", "2027-01-15", Decimal("350.000"), "TND"),
                                  ("sample-tn", "2027-02-15", Decimal("350.000"), "TND")]
        assert stored(telegram_id) == [("sample-tn", "2027-01-20", Decimal("120.5"), "TND")]
    # staff correct the loan: the file's rows replace the stored ones; other loans are untouched
    path.write_text(HEADER + f"00{number[1:]},sample-tn,2027-02-15,360.000,TND\n", encoding="utf-8")
    assert run_import(path, database_url)[0] == 0
    assert stored(number) == [("sample-tn", "2027-02-15", Decimal("360.000"), "TND")]
    assert stored(telegram_id) == [("sample-tn", "2027-01-20", Decimal("120.5"), "TND")]


def test_a_semicolon_file_from_a_spreadsheet_with_a_byte_order_mark_is_read(tmp_path, database_url):
    number = new_number()
    path = tmp_path / "loans.csv"
    path.write_text("\ufeffContact;Programme;Due_date;Amount;Name\n"
                    f"{number};sample-tn;2027-05-01;99.900;Amina\n", encoding="utf-8")
    assert run_import(path, database_url)[0] == 0
    assert stored(number) == [("sample-tn", "2027-05-01", Decimal("99.900"), "TND")]


def test_a_bad_file_is_refused_row_by_row_and_nothing_is_stored(tmp_path, database_url):
    good = new_number()
    path = tmp_path / "loans.csv"
    path.write_text(HEADER + "\n".join([
        f"{good},sample-tn,2027-01-15,350.000,TND",    # row 2: fine, but not stored
        "20 123 456,sample-tn,2027-01-15,350,TND",    # row 3: no country code
        f"{good},sample-xx,2027-01-15,350,TND",        # row 4: unknown programme
        f"{good},sample-tn,15/01/2027,350,TND",        # row 5: not ISO
        f"{good},sample-tn,2027-03-15,-5,TND",         # row 6: negative
        f"{good},sample-tn,2027-04-15,1.2345,TND",     # row 7: four decimals for TND (3)
        f"{good},sample-tn,2027-05-15,100,EUR",        # row 8: not the programme's currency
        f"{good},sample-tn,2027-01-15,350,TND",        # row 9: twice the same due date
        f"{good},sample-tn,2027-06-15,\"1,200\",TND",  # row 10: thousands separator
    ]) + "\n", encoding="utf-8")
    status, out, err = run_import(path, database_url)
    assert (status, out) == (2, "")
    lines = err.strip().splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [f"row {n}" for n in range(3, 11)]
    assert "'20 123 456' is neither a phone number in international form" in lines[0]
    assert "programme 'sample-xx' is unknown (known: sample-af, sample-pk, sample-tn)" in lines[1]
    assert "'15/01/2027' is not a date written YYYY-MM-DD" in lines[2]
    assert "must be more than zero" in lines[3]
    assert "more decimals than TND has (3)" in lines[4]
    assert "currency 'EUR' is not the currency of sample-tn (TND)" in lines[5]
    assert "the same contact, programme and due_date as row 2" in lines[6]
    assert "'1,200' is not a plain number" in lines[7]
    assert lines[-1] == f"nothing imported: 8 problem(s) in {path}"
    assert stored(loan_book.contact_of(good)) == []


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("", "the file is empty"),
    ("contact,programme,amount\n+21620123456,sample-tn,100\n", "missing column(s) due_date"),
    (HEADER, "no instalments after the header"),
    (b"\xff\xfe\x00b\x00a\x00d", "cannot be read as UTF-8 text"),
])
def test_an_unreadable_file_exits_2_with_one_sentence(tmp_path, database_url, content, message):
    path = tmp_path / "loans.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    status, out, err = run_import(path, database_url)
    assert (status, out) == (2, "") and message in err.splitlines()[0]


@pytest.mark.parametrize("sender, channel, contact", [
    ("+21620123456", "sms", "+21620123456"),
    ("whatsapp:+21620123456", "whatsapp", "+21620123456"),
    ("5551234001", "telegram", "5551234001"),
    ("+2162012", "sms", None),  # too short to be a number
    ("web-3f2a1b", "webchat", None),
    ("5551234001", "webchat", None),  # the browser chooses its sender id: it proves nothing
    ("+21620123456", "rest", None),
    ("whatsapp:+21620123456", None, "+21620123456"),  # staff tools: by the id's form
    ("5551234001", None, "5551234001"),
])
def test_a_conversation_is_matched_to_the_imported_contact_only_on_a_channel_that_proves_it(sender, channel,
                                                                                            contact):
    assert loan_book.contact_of_conversation(sender, channel) == contact


# ---- end to end, on SMS: the real Rasa server and action server, a stand-in of Twilio ------------

ACCOUNT, AUTH = "AC000000000000000000000000000000c4", "c40000000000000000000000000000a4"
PUBLIC, FROM_SMS = "https://returnee.example.org", "+21670000001"


@pytest.fixture(scope="module")
def twilio():
    stand_in = TwilioStandIn(ACCOUNT, AUTH)
    yield stand_in
    stand_in.close()


@pytest.fixture(scope="module")
def sms_server(tmp_path_factory, action_server, database_url, twilio):
    """`rasa run` with the project's channels, SMS going to the Twilio stand-in."""
    tmp = tmp_path_factory.mktemp("loans_e2e")
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": AUTH, "TWILIO_PUBLIC_URL": PUBLIC,
           "TWILIO_FROM_SMS": FROM_SMS, "TWILIO_API_BASE": twilio.url}
    running = start_rasa_server(tmp, action_server, tmp / "tracker.db", database_url, env_extra=env)
    yield running
    running.stop()


def sms(server, twilio, sender, body):
    """Sends an SMS as Twilio posts it; returns the texts of the SMS the assistant sent back."""
    twilio.clear()
    sid = f"SM{uuid.uuid4().hex}"
    params = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": ACCOUNT, "From": sender,
              "To": FROM_SMS, "Body": body, "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
              "ApiVersion": "2010-04-01"}
    signature = RequestValidator(AUTH).compute_signature(f"{PUBLIC}/webhooks/twilio/webhook", params)
    request = urllib.request.Request(f"{server.url}/webhooks/twilio/webhook", data=urlencode(params).encode(),
                                     method="POST", headers={"Content-Type": "application/x-www-form-urlencoded",
                                                             "X-Twilio-Signature": signature})
    with urllib.request.urlopen(request, timeout=120) as answer:
        assert answer.status == 200
    return [r.params["Body"] for r in twilio.sent() if r.params.get("To") == sender]


def test_reminders_follow_the_imported_loan_to_the_users_phone(sms_server, twilio, tmp_path, database_url):
    sender = new_number()
    tunisia = load_all()["sample-tn"]
    today = dt.datetime.now(tunisia.timezone).date()
    dues = [today - dt.timedelta(days=20), today + dt.timedelta(days=30), today + dt.timedelta(days=61)]
    amounts = ["212.125", "212.125", "212.130"]
    path = tmp_path / "loans.csv"
    spaced = f"{sender[:4]} {sender[4:6]} {sender[6:9]} {sender[9:]}"
    path.write_text(HEADER + "".join(f"{spaced},sample-tn,{d.isoformat()},{a},TND\n" for d, a in zip(dues, amounts)),
                    encoding="utf-8")
    assert run_import(path, database_url)[0] == 0

    sms(sms_server, twilio, sender, '/choose_language{"language":"fr"}')
    replies = sms(sms_server, twilio, sender, "/set_reminder")  # no calculation: the real loan
    pending = reminders.pending_for(sender)
    assert [(r.due_date, r.amount, r.channel) for r in pending] == [
        (d, Decimal(a), "sms") for d, a in zip(dues[1:], amounts[1:])]
    first = pending[0].send_at.astimezone(tunisia.timezone).date()
    fr = Renderer("fr", "TN", "TND")
    assert prefer_gsm7(fr.render("utter_reminders_set", {"count": 2, "days": 3, "first": first.isoformat()})) \
        in replies[-1]

    with storage.session() as db, db.begin():
        db.execute(sa.update(reminders.Reminder).where(reminders.Reminder.sender_id == sender)
                   .values(send_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    worker = Worker(sms_server.url, sms_server.token, dt.timedelta(minutes=2))
    claimed = [r for r in reminders.claim_due(worker.name, worker.lease, limit=1000) if r.sender_id == sender]
    twilio.clear()
    assert [worker.deliver(r) for r in claimed] == [True, True]
    texts = [r.params["Body"] for r in twilio.sent() if r.params.get("To") == sender]
    expected = [prefer_gsm7(fr.render("utter_reminder_due", {"amount": a, "due": d.isoformat()}))
                for d, a in zip(dues[1:], amounts[1:])]
    assert len(texts) == 2 and all(text.startswith(first) for text, first in zip(texts, expected))  # + the menu


def test_without_an_imported_loan_or_a_calculation_there_is_nothing_to_remind(sms_server, twilio):
    sender = new_number()
    sms(sms_server, twilio, sender, '/choose_language{"language":"en"}')
    replies = sms(sms_server, twilio, sender, "/set_reminder")
    assert Renderer("en").gettext("utter_reminders_nothing_to_set") in replies[-1]
    assert reminders.pending_for(sender) == []


def test_a_corrected_loan_moves_the_reminders_already_set_from_it(sms_server, twilio, tmp_path, database_url):
    sender, calculated = new_number(), new_number()
    tunisia = load_all()["sample-tn"]
    today = dt.datetime.now(tunisia.timezone).date()
    first_dues = [today + dt.timedelta(days=30), today + dt.timedelta(days=60)]
    path = tmp_path / "loans.csv"
    path.write_text(HEADER + "".join(f"{sender},sample-tn,{d.isoformat()},300.000,TND\n" for d in first_dues),
                    encoding="utf-8")
    assert run_import(path, database_url)[0] == 0
    sms(sms_server, twilio, sender, '/choose_language{"language":"ar"}')
    sms(sms_server, twilio, sender, "/set_reminder")
    assert [r.due_date for r in reminders.pending_for(sender)] == first_dues
    # the other user's reminders come from a calculation, not from the loan staff import below
    own_dates = [(today + dt.timedelta(days=45), Decimal("99.000"))]
    reminders.schedule(calculated, "sms", tunisia, own_dates)

    # staff reschedule the loan: the second payment moves a month later, a third is added
    new_dues = [first_dues[0], today + dt.timedelta(days=90), today + dt.timedelta(days=120)]
    path.write_text(HEADER + "".join(f"{number},sample-tn,{d.isoformat()},{amount},TND\n" for number, d, amount in
                                     [(sender, d, "250.000") for d in new_dues]
                                     + [(calculated, today + dt.timedelta(days=50), "80.000")]), encoding="utf-8")
    status, out, _ = run_import(path, database_url)
    assert status == 0 and out.endswith("moved the reminders of 1 user(s) to the new due dates\n")
    assert [(r.due_date, r.amount, r.channel) for r in reminders.pending_for(sender)] == [
        (d, Decimal("250.000"), "sms") for d in new_dues]
    assert [(r.due_date, r.amount) for r in reminders.pending_for(calculated)] == own_dates

    assert run_import(path, database_url)[1].count("moved") == 1  # the same file again: the same reminders
    assert [r.due_date for r in reminders.pending_for(sender)] == new_dues

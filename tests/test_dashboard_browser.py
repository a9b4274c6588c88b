"""The dashboard driven in a real browser: Debian's Chromium, headless, through Selenium.

`make test` installs chromium and chromium-driver first (scripts/install-chromium.sh). The
browser is started headless, without sandbox, GPU, sync or background networking, with a
fresh profile; CHROMIUM and CHROMEDRIVER override the paths.
"""
from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot import storage
from bot.dashboard import queries
from bot.dashboard.filters import Filters
from tests.test_dashboard_support import ADMIN, DEMO_DAYS, DEMO_END, STAFF, Server, make_demo_db

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
START = DEMO_END - dt.timedelta(days=DEMO_DAYS - 1)

pytestmark = pytest.mark.skipif(not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
                                reason="chromium and chromedriver are not installed (scripts/install-chromium.sh)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'browser.db'}"
    make_demo_db(url)
    server = Server(url, folder / "server.log")
    yield server, url
    server.stop()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory, downloads):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--lang=en-US",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False,
                                              "safebrowsing.enabled": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def log_in(browser, base, account):
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(f"{base}/login")
    browser.find_element(By.NAME, "username").send_keys(account[0])
    browser.find_element(By.NAME, "password").send_keys(account[1])
    form = browser.find_element(By.CSS_SELECTOR, "form[action='/login']")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    # the session cookie exists only once the answer to the form has arrived
    wait_until_replaced(browser, form)


def wait_until_replaced(browser, element) -> None:
    """Waits until the page holding `element` has been replaced by the next one."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    # mid-navigation Chrome may answer "Node with given id does not belong to the document": ask again
    WebDriverWait(browser, 30, ignored_exceptions=[WebDriverException]).until(
        expected_conditions.staleness_of(element))


def tile(browser, name: str) -> int:
    from selenium.webdriver.common.by import By

    for element in browser.find_elements(By.CSS_SELECTOR, ".tile"):
        if element.find_element(By.CSS_SELECTOR, ".name").text == name:
            return int(element.find_element(By.CSS_SELECTOR, ".value").text.replace(",", ""))
    raise AssertionError(f"no tile {name}")


def test_an_anonymous_visitor_is_refused(site, browser):
    from selenium.webdriver.common.by import By

    server, _ = site
    browser.delete_all_cookies()
    browser.get(f"{server.base}/questions?start={START}&end={DEMO_END}")
    assert browser.current_url.startswith(f"{server.base}/login?next=")
    assert browser.find_elements(By.CSS_SELECTOR, "table") == []
    assert browser.find_elements(By.NAME, "password")


def test_log_in_filter_and_download_a_csv(site, browser, downloads):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    server, url = site
    log_in(browser, server.base, STAFF)
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".tiles"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Overview"
    for name, value in (("start", START.isoformat()), ("end", DEMO_END.isoformat())):
        field = browser.find_element(By.NAME, name)
        browser.execute_script("arguments[0].value = arguments[1]", field, value)
    Select(browser.find_element(By.NAME, "language")).select_by_value("fa")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda b: "language=fa" in b.current_url)
    assert f"start={START}" in browser.current_url and f"end={DEMO_END}" in browser.current_url

    with storage.engine(url).connect() as db:
        expected = queries.overview(db, Filters(START, DEMO_END, language="fa"))
    assert tile(browser, "Active users") == expected.totals["active_users"] > 0
    assert tile(browser, "Conversations") == expected.totals["conversations"]

    link = browser.find_element(By.CSS_SELECTOR, "a.csv[href^='/csv/overview/by_channel']")
    link.click()
    target = downloads / f"overview-by_channel-{START}-{DEMO_END}.csv"
    deadline = time.monotonic() + 15
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    rows = list(csv.reader(target.open(encoding="utf-8")))
    assert rows[0] == ["channel", "active_users", "conversations", "messages"]
    with storage.engine(url).connect() as db:
        truth = db.execute(sa.text(
            "SELECT channel, COUNT(DISTINCT sender_key), SUM(conversations), SUM(messages) FROM dash_user_days "
            "WHERE language = 'fa' AND day BETWEEN :a AND :b GROUP BY channel"), {"a": START, "b": DEMO_END}).all()
        senders = db.execute(sa.text(
            "SELECT p.channel, COUNT(DISTINCT e.sender_id) FROM events e JOIN profiles p ON p.sender_id = e.sender_id "
            "WHERE e.type_name = 'user' AND p.language = 'fa' GROUP BY p.channel")).all()
    assert sorted((r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows[1:]) == \
        sorted((c, int(a), int(b), int(n)) for c, a, b, n in truth)
    assert {r[0]: int(r[1]) for r in rows[1:]} == dict(senders)


def test_right_to_left_messages_display_right_to_left(site, browser):
    from selenium.webdriver.common.by import By

    server, _ = site
    log_in(browser, server.base, ADMIN)
    browser.get(f"{server.base}/questions?start={START}&end={DEMO_END}&language=ur")
    cells = browser.find_elements(By.CSS_SELECTOR, "td.message")
    assert cells
    for cell in cells[:5]:
        assert cell.get_attribute("dir") == "rtl"
        assert cell.value_of_css_property("direction") == "rtl"
        assert cell.value_of_css_property("text-align") in ("right", "end")
    browser.find_element(By.LINK_TEXT, "Context").click()
    assert "user-" in browser.find_element(By.CSS_SELECTOR, ".note").text
    highlighted = browser.find_element(By.CSS_SELECTOR, ".transcript li.highlight p")
    assert highlighted.value_of_css_property("direction") == "rtl"


def test_marking_a_question_handled_from_the_page(site, browser):
    from selenium.webdriver.common.by import By

    server, _ = site
    log_in(browser, server.base, STAFF)
    browser.get(f"{server.base}/questions?start={START}&end={DEMO_END}&language=ps")
    before = tile(browser, "Open unanswered questions")
    similar = int(browser.find_element(By.CSS_SELECTOR, "table.unanswered tbody tr td.num").text)
    from selenium.webdriver.support.ui import WebDriverWait

    old_page = browser.find_element(By.CSS_SELECTOR, "table.unanswered")
    browser.find_element(By.CSS_SELECTOR, "table.unanswered button[type=submit]").click()
    wait_until_replaced(browser, old_page)
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".tile .value"))
    assert "language=ps" in browser.current_url
    assert tile(browser, "Open unanswered questions") == before - similar

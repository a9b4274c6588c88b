"""Page timings on the big demo dataset: `make bench-dashboard` (`python -m bot.dashboard.bench`).

Uses a PostgreSQL database of its own (`DASHBOARD_BENCH_URL`, default
postgresql://postgres@127.0.0.1:5432/dashboard_bench, created if missing), loads the demo data
there (10,000 users, 1,000,000 events over 6 months, with their handoff tickets) unless it is
already loaded, starts the dashboard server, logs in, and requests every page several times: with the default
range (30 days), the whole six months, and with filters. Prints the median and worst time of
each. This is a measurement, not a test: it never fails on a slow page, it reports it.
"""
from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import List, Optional, Tuple

import sqlalchemy as sa

from bot import storage

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/dashboard_bench"
USER, PASSWORD = "bench", "bench-password-1234"


def ensure_database(url: str) -> None:
    """Creates the PostgreSQL database of `url` if it does not exist."""
    target = sa.engine.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), future=True, isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        if not db.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}).first():
            db.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def prepare(url: str, events: int, users: int, reload: bool) -> None:
    """Loads the demo data unless the database already holds at least `events` events."""
    from bot import demo_data
    from bot.dashboard import auth
    from bot.dashboard.etl import Refresher

    ensure_database(url)
    storage.upgrade(url)
    engine = storage.engine(url)
    with engine.connect() as db:
        present = sa.inspect(db).has_table("events") and db.execute(sa.text("SELECT count(*) FROM events")).scalar()
    if reload or not present or present < events:
        demo_data.load(url, users=users, events=events, replace=True)
    else:
        print(f"using the {present:,} events already in the database")
        Refresher(engine).run(lag=0)
    with engine.begin() as db:
        db.execute(sa.text("ANALYZE"))
    try:
        auth.create_account(engine, USER, PASSWORD, "admin")
    except auth.AccountError:
        auth.set_password(engine, USER, PASSWORD)


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, port: int) -> subprocess.Popen:
    """The dashboard server in a child process, with the background refresh off."""
    env = dict(os.environ, DATABASE_URL=url, DASHBOARD_REFRESH_SECONDS="0", PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "bot.dashboard", "serve", "--port", str(port)], cwd=ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the dashboard server did not start")


def login(base: str) -> urllib.request.OpenerDirector:
    """An HTTP client logged in as the bench account."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(f"{base}/login").read().decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrf": token, "username": USER, "password": PASSWORD, "next": "/"}).encode()
    opener.open(f"{base}/login", data=form)
    return opener


def timings(opener, base: str, paths: List[str], rounds: int) -> List[Tuple[str, float, float, int]]:
    """(path, median seconds, worst seconds, bytes) for each path, after one warm-up request."""
    results = []
    for path in paths:
        opener.open(base + path).read()
        times, size = [], 0
        for _ in range(rounds):
            began = time.perf_counter()
            with opener.open(base + path) as reply:
                size = len(reply.read())
                if reply.status != 200:
                    raise SystemExit(f"{path} answered {reply.status}")
            times.append(time.perf_counter() - began)
        results.append((path, statistics.median(times), max(times), size))
    return results


def screenshot(base: str, path: str, target: Path, height: int = 1700) -> None:
    """Saves the top of a page as seen by headless Chromium (needs selenium and chromium)."""
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--no-first-run", "--disable-sync", "--hide-scrollbars",
                     f"--window-size=1280,{height}", f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")),
                              options=options)
    try:
        driver.get(f"{base}/login")
        driver.find_element(By.NAME, "username").send_keys(USER)
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
        driver.get(base + path)
        target.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(target))
        print(f"screenshot: {target}")
    finally:
        driver.quit()


def main(argv: Optional[List[str]] = None) -> int:
    """Prepares the data, runs the server, prints the table of timings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("DASHBOARD_BENCH_URL", DEFAULT_URL))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reload", action="store_true", help="load the demo data again")
    parser.add_argument("--screenshot", metavar="PNG", help="also save a picture of the overview (docs/dashboard.png)")
    args = parser.parse_args(argv)
    prepare(args.url, args.events, args.users, args.reload)
    engine = storage.engine(args.url)
    with engine.connect() as db:
        counts = {t: db.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                  for t in ("events", "dash_senders", "dash_user_days", "dash_label_days", "dash_steps",
                            "dash_calculations", "unanswered_questions", "reminders", "tickets")}
        first, last = db.execute(sa.text("SELECT min(day), max(day) FROM dash_user_days")).one()
    print(", ".join(f"{name} {count:,}" for name, count in counts.items()))
    port = free_port()
    server = start_server(args.url, port)
    base = f"http://127.0.0.1:{port}"
    try:
        opener = login(base)
        whole = f"start={first}&end={last}"
        paths = [page + query for page in ("/", "/questions", "/calculator", "/handoffs", "/funnel")
                 for query in ("", f"?{whole}", f"?{whole}&channel=telegram&language=ar")]
        paths += [f"/?{whole}&split=language", f"/csv/overview/daily_split?{whole}", f"/csv/questions/labels?{whole}"]
        results = timings(opener, base, paths, args.rounds)
        if args.screenshot:
            screenshot(base, f"/?{whole}", Path(args.screenshot))
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(f"\n{'page':<78} {'median':>8} {'worst':>8} {'size':>9}")
    for path, median, worst, size in results:
        flag = "" if worst < 1 else "  SLOW"
        print(f"{path:<78} {median * 1000:>6.0f}ms {worst * 1000:>6.0f}ms {size:>8,}B{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

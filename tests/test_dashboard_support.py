"""Helpers shared by the dashboard tests: a small demo database, a running server, a logged-in client.

No tests here. The demo data is small on purpose (200 users, about 20,000 events): the big
dataset is for `make bench-dashboard`, never for the test suite.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import pytest
import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
DEMO_END = dt.date(2025, 3, 31)
DEMO_DAYS = 120
ADMIN = ("ada", "ada-password-2025")
STAFF = ("sam", "sam-password-2025")
PG_ADMIN_URL = os.environ.get("DASHBOARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def make_demo_db(url: str, users: int = 200, events: int = 20_000) -> dict:
    """Migrates the database at `url`, loads a small demo history and two accounts."""
    from bot import demo_data, storage
    from bot.dashboard import auth

    counts = demo_data.load(url, users=users, events=events, days=DEMO_DAYS, seed=11, replace=True, quiet=True,
                            end=DEMO_END)
    engine = storage.engine(url)
    for (name, password), role in ((ADMIN, "admin"), (STAFF, "staff")):
        try:
            auth.create_account(engine, name, password, role)
        except auth.AccountError:
            auth.set_password(engine, name, password)
    return counts


def postgres_database(name: str) -> Optional[str]:
    """A fresh PostgreSQL database named `name` (dropped first if present), or None without PostgreSQL."""
    try:
        admin = sa.create_engine(PG_ADMIN_URL, future=True, isolation_level="AUTOCOMMIT")
        with admin.connect() as db:
            db.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            db.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except sa.exc.OperationalError:
        return None
    return str(sa.engine.make_url(PG_ADMIN_URL).set(database=name))


def drop_postgres_database(name: str) -> None:
    """Drops a database made by `postgres_database`."""
    from bot import storage

    url = str(sa.engine.make_url(PG_ADMIN_URL).set(database=name))
    storage.engine(url).dispose()
    admin = sa.create_engine(PG_ADMIN_URL, future=True, isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def app_database_on_postgres(name: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database as the project's database (`DATABASE_URL`) inside the
    block; the previous database comes back and this one is dropped after."""
    from bot import storage

    url = postgres_database(name)
    if url is None:
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432; this test needs it")
    storage.upgrade(url)
    before = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    storage.engine.cache_clear()
    try:
        yield url
    finally:
        if before is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = before
        storage.engine.cache_clear()
        drop_postgres_database(name)


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m bot.dashboard serve` on a free port, for one database."""

    def __init__(self, url: str, log: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        environment = dict(os.environ, DATABASE_URL=url, DASHBOARD_REFRESH_SECONDS="0", PYTHONPATH=str(ROOT))
        environment.update(env)
        self.log = log
        self.process = subprocess.Popen([sys.executable, "-m", "bot.dashboard", "serve", "--port", str(self.port)],
                                        cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(log.read_text())
            try:
                urllib.request.urlopen(f"{self.base}/health", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError("the dashboard did not start")

    def stop(self) -> None:
        """Stops the server."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(base: str, account=ADMIN) -> requests.Session:
    """A requests session logged in to the dashboard."""
    client = requests.Session()
    token = csrf_of(client.get(f"{base}/login").text)
    reply = client.post(f"{base}/login", data={"csrf": token, "username": account[0], "password": account[1],
                                               "next": "/"}, allow_redirects=False)
    assert reply.status_code == 303, reply.text
    return client


def demo_range() -> str:
    """The query string of the demo data's whole period."""
    start = DEMO_END - dt.timedelta(days=DEMO_DAYS - 1)
    return f"start={start.isoformat()}&end={DEMO_END.isoformat()}"

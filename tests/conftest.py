"""Shared fixtures: a fresh database per test session, the real action server, a loaded agent."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bot.run import rasa_server_command

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "assistant.tar.gz"
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, seconds: float = 120) -> None:
    """Waits until `url` answers; fails the test if the process dies or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer in {seconds}s")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """A migrated SQLite database for this test session, also used by child processes."""
    from bot import storage

    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'assistant.db'}"
    os.environ["DATABASE_URL"] = url
    storage.engine.cache_clear()
    storage.upgrade(url)
    return url


def start_action_server(database_url: str) -> tuple:
    """Starts the real rasa-sdk action server on a free port; returns its webhook URL and process."""
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [str(BIN / "rasa"), "run", "actions", "--actions", "actions", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process)
    except Exception:
        process.kill()
        raise
    return f"http://127.0.0.1:{port}/webhook", process


@pytest.fixture(scope="session")
def action_server(database_url):
    """The real rasa-sdk action server, running the project's actions."""
    url, process = start_action_server(database_url)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="session")
def tracker_db(tmp_path_factory) -> Path:
    """The SQLite file of the conversations of this test session."""
    return tmp_path_factory.mktemp("tracker") / "tracker.db"


async def load_assistant(action_url: str, tracker_db: Path):
    """Loads the trained model with our NLG, the action server and a SQLite tracker store.

    Each call builds a new agent on the same tracker database, like a server restart.
    """
    from rasa.core.agent import load_agent
    from rasa.core.utils import AvailableEndpoints

    from rasa.utils.endpoints import EndpointConfig

    if not MODEL.exists():
        pytest.fail("no trained model: run `make test`, which trains it")
    endpoints = AvailableEndpoints(
        action=EndpointConfig(url=action_url),
        nlg=EndpointConfig(type="bot.nlg.CatalogNLG"),
        tracker_store=EndpointConfig(type="bot.tracker_store.PrivacySQLTrackerStore",
                                     dialect="sqlite", db=str(tracker_db)),
        lock_store=EndpointConfig(type="in_memory"),
    )
    return await load_agent(model_path=str(MODEL), endpoints=endpoints)


@pytest.fixture(scope="session")
async def assistant(action_server, tracker_db):
    """The assistant, loaded once for the session."""
    return await load_assistant(action_server, tracker_db)


async def say(agent, sender: str, text: str, **metadata):
    """Sends `text` as `sender` on the web chat channel; returns the bot's messages."""
    from channels.webchat import WebChatOutput
    from rasa.core.channels.channel import UserMessage

    collector = WebChatOutput()
    await agent.handle_message(UserMessage(text, collector, sender, input_channel="webchat",
                                           metadata=metadata or None))
    return collector.messages


def write_endpoints(path: Path, action_url: str, tracker_db: Path, extra: str = "") -> Path:
    """An endpoints.yml like bot/endpoints.yml, with this test's action server and databases."""
    path.write_text(
        f"action_endpoint:\n  url: \"{action_url}\"\n"
        f"tracker_store:\n  type: bot.tracker_store.PrivacySQLTrackerStore\n  dialect: sqlite\n  db: \"{tracker_db}\"\n"
        f"lock_store:\n  type: in_memory\n"
        f"nlg:\n  type: bot.nlg.CatalogNLG\n{extra}",
        encoding="utf-8",
    )
    return path


class RasaServer:
    """A running `rasa run` process: its URL, API token and process."""

    def __init__(self, url: str, token: str, process: subprocess.Popen, log: Path) -> None:
        self.url, self.token, self.process, self.log = url, token, process, log

    def stop(self) -> None:
        """Terminates the server."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_rasa_server(tmp: Path, action_url: str, tracker_db: Path, database_url: str,
                      credentials: Path = ROOT / "bot" / "credentials.yml", env_extra: dict = None,
                      endpoints: Path = None) -> RasaServer:
    """Starts the real Rasa server with the trained model, the API enabled, on a free port.

    With `endpoints` (e.g. bot/endpoints.prod.yml, its settings in `env_extra`), that file is
    used as it is and `action_url`, `tracker_db` are ignored.
    """
    if not MODEL.exists():
        pytest.fail("no trained model: run `make test`, which trains it")
    port, token = free_port(), "test-token"
    if endpoints is None:
        endpoints = write_endpoints(tmp / f"endpoints-{port}.yml", action_url, tracker_db)
    log = tmp / f"rasa-{port}.log"
    env = dict(os.environ, DATABASE_URL=database_url, PYTHONPATH=str(ROOT), **(env_extra or {}))
    process = subprocess.Popen(
        rasa_server_command("run", "--model", str(MODEL), "--endpoints", str(endpoints), "--credentials",
                            str(credentials), "--port", str(port), "--enable-api", "--auth-token", token),
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/", process, seconds=300)
    except Exception:
        process.kill()
        raise RuntimeError(log.read_text(encoding="utf-8")[-3000:])
    return RasaServer(url, token, process, log)


@pytest.fixture(scope="session")
def rasa_server(tmp_path_factory, action_server, database_url):
    """The real Rasa server (REST, web chat and API), shared by the end-to-end tests."""
    tmp = tmp_path_factory.mktemp("rasa")
    server = start_rasa_server(tmp, action_server, tmp / "tracker.db", database_url)
    yield server
    server.stop()

"""Starts the production setup on this machine: `make run-prod`.

Two Rasa replicas (`bot/endpoints.prod.yml`: PostgreSQL tracker store, Redis lock store) behind
a round-robin load balancer, two action servers (one per replica) and two reminder workers,
against this machine's PostgreSQL and Redis. The database is created if missing and migrated.
Every line a process prints is prefixed with its name. A process that dies is restarted;
Ctrl-C stops them all.

Settings (environment): POSTGRES_HOST, POSTGRES_PORT, POSTGRES_DB, POSTGRES_USER,
POSTGRES_PASSWORD (default: 127.0.0.1:5432, database `returnee`, user `postgres`, no password),
REDIS_HOST, REDIS_PORT, REDIS_DB, REDIS_PASSWORD, REDIS_KEY_PREFIX (default 127.0.0.1:6379,
db 0, prefix `returnee`), LOCK_LIFETIME (seconds, default 10), RASA_API_TOKEN (default: a new
random one), DATABASE_URL (default: the PostgreSQL database above), plus the channels' settings
(docs/CHANNELS.md).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from bot.run import BIN, MODEL, ROOT, _env, rasa_server_command

ENDPOINTS = ROOT / "bot" / "endpoints.prod.yml"
CREDENTIALS = ROOT / "bot" / "credentials.yml"
DEFAULTS = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432", "POSTGRES_DB": "returnee",
            "POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": "", "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": "6379", "REDIS_DB": "0", "REDIS_PASSWORD": "", "REDIS_KEY_PREFIX": "returnee",
            "LOCK_LIFETIME": "10"}
READY_PATHS = {"actions": "/health", "balancer": "/_lb/status"}
RESTART_DELAY = 2.0  # seconds before restarting a process that died; doubled each time, up to 60


def settings(environ: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment of every process: defaults filled in, DATABASE_URL derived from POSTGRES_*."""
    env = _env() if environ is None else dict(environ)
    for name, value in DEFAULTS.items():
        env.setdefault(name, value)
    if not env.get("DATABASE_URL"):
        password = f":{env['POSTGRES_PASSWORD']}" if env["POSTGRES_PASSWORD"] else ""
        env["DATABASE_URL"] = (f"postgresql://{env['POSTGRES_USER']}{password}@{env['POSTGRES_HOST']}:"
                               f"{env['POSTGRES_PORT']}/{env['POSTGRES_DB']}")
    env.setdefault("RASA_API_TOKEN", secrets.token_urlsafe(24))
    return env


def prepare_database(url: str) -> None:
    """Creates the PostgreSQL database if it does not exist, Rasa's `events` table (so the
    migrations can index it), then migrates the project's tables to the latest revision."""
    import sqlalchemy as sa
    from rasa.core.tracker_store import SQLTrackerStore

    from bot import storage

    target = sa.engine.make_url(url)
    if target.get_backend_name() == "postgresql":
        admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT", future=True)
        with admin.connect() as db:
            if not db.execute(sa.text("select 1 from pg_database where datname = :d"),
                              {"d": target.database}).scalar():
                db.execute(sa.text(f'create database "{target.database}"'))
        admin.dispose()
    SQLTrackerStore.Base.metadata.create_all(storage.engine(url))
    storage.upgrade(url)


@dataclass
class Child:
    """One supervised process: how to start it, and the running one."""

    name: str
    command: List[str]
    env: Dict[str, str]
    port: Optional[int] = None
    process: Optional[subprocess.Popen] = None
    restarts: int = 0
    next_start: float = 0.0
    pumps: List[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Starts the process in its own session (Ctrl-C reaches the supervisor only)."""
        self.process = subprocess.Popen(self.command, env=self.env, cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        pump = threading.Thread(target=_prefix_lines, args=(self.name, self.process.stdout), daemon=True)
        pump.start()
        self.pumps = [pump]

    @property
    def role(self) -> str:
        """actions, rasa, balancer or worker."""
        return self.name.split("-")[0]

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self.process is not None and self.process.poll() is None


_print_lock = threading.Lock()


def _prefix_lines(name: str, stream) -> None:
    for raw in iter(stream.readline, b""):
        with _print_lock:
            sys.stdout.write(f"[{name}] {raw.decode('utf-8', 'replace').rstrip()}\n")
            sys.stdout.flush()
    stream.close()


def children(env: Dict[str, str], replica_ports: List[int], action_ports: List[int], port: int,
             workers: int, model: Path = MODEL) -> List[Child]:
    """Every process of the setup, in start order; replica i uses action server i mod n."""
    made = []
    for i, action_port in enumerate(action_ports, 1):
        made.append(Child(f"actions-{i}", [str(BIN / "rasa"), "run", "actions", "--actions", "actions",
                                           "--port", str(action_port)], env, action_port))
    for i, replica_port in enumerate(replica_ports, 1):
        action_url = f"http://127.0.0.1:{action_ports[(i - 1) % len(action_ports)]}/webhook"
        made.append(Child(f"rasa-{i}", rasa_server_command(
            "run", "--model", str(model), "--endpoints", str(ENDPOINTS), "--credentials", str(CREDENTIALS),
            "--port", str(replica_port), "--enable-api", "--auth-token", env["RASA_API_TOKEN"]),
                          dict(env, ACTION_SERVER_URL=action_url), replica_port))
    made.append(Child("balancer", [sys.executable, "-m", "bot.loadbalancer", "--port", str(port),
                                   *[f"http://127.0.0.1:{p}" for p in replica_ports]], env, port))
    for i in range(1, workers + 1):
        made.append(Child(f"worker-{i}", [sys.executable, "-m", "bot.reminder_worker", "--rasa-url",
                                          f"http://127.0.0.1:{port}", "--poll", "5"], env))
    return made


def answers(url: str) -> bool:
    """Whether `url` answers an HTTP GET."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


class Supervisor:
    """Starts the children, restarts those that die, stops them all on request."""

    def __init__(self, processes: List[Child], state: Optional[Path] = None) -> None:
        self.children = processes
        self.state = state
        self.stopping = False

    def write_state(self) -> None:
        """Writes each child's pid and port to the state file (for tests and the benchmark)."""
        if self.state:
            data = {c.name: {"pid": c.process.pid if c.process else None, "port": c.port,
                             "restarts": c.restarts} for c in self.children}
            temporary = self.state.with_suffix(".tmp")
            temporary.write_text(json.dumps(data), encoding="utf-8")
            temporary.replace(self.state)

    def start(self) -> None:
        """Starts every child."""
        for child in self.children:
            child.start()
        self.write_state()

    def wait_ready(self, seconds: float) -> bool:
        """Waits until every server answers; False if time runs out or one cannot start."""
        deadline = time.monotonic() + seconds
        pending = [c for c in self.children if c.port]
        while pending and time.monotonic() < deadline and not self.stopping:
            self.tend()
            pending = [c for c in pending if not answers(f"http://127.0.0.1:{c.port}{READY_PATHS.get(c.role, '/')}")]
            time.sleep(0.5)
        return not pending

    def tend(self) -> None:
        """Restarts children that died, with a growing delay."""
        now = time.monotonic()
        for child in self.children:
            if child.alive or self.stopping:
                continue
            if child.next_start == 0.0:
                delay = min(60.0, RESTART_DELAY * 2 ** min(child.restarts, 5))
                child.next_start = now + delay
                print(f"[supervisor] {child.name} exited with {child.process.returncode}; "
                      f"restarting in {delay:.0f}s", flush=True)
            elif now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                child.start()
                self.write_state()

    def stop(self) -> None:
        """Stops workers first, then the balancer, replicas and action servers."""
        self.stopping = True
        for child in reversed(self.children):
            if child.alive:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            for pump in child.pumps:
                pump.join(timeout=2)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _ports(text: str) -> List[int]:
    return [int(p) for p in text.split(",") if p.strip()]


def main(argv: Optional[List[str]] = None) -> int:
    """Prepares the database, starts the processes and supervises them until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 5005)), help="load balancer")
    parser.add_argument("--replica-ports", type=_ports, default=[5006, 5007])
    parser.add_argument("--action-ports", type=_ports, default=[5055, 5056])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--state", type=Path, help="write each process's pid and port to this JSON file")
    parser.add_argument("--no-restart", action="store_true", help="stop everything when a process dies")
    parser.add_argument("--prepare-only", action="store_true",
                        help="create and migrate the database, then exit (a deployment's migrate step)")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    if not args.prepare_only and not args.model.exists():
        print("No trained model: run `make model` first.", file=sys.stderr)
        return 2
    env = settings()
    try:
        prepare_database(env["DATABASE_URL"])
    except Exception as error:  # PostgreSQL unreachable or refusing: say so and stop
        print(f"Cannot prepare the database: {error}", file=sys.stderr)
        return 1
    if args.prepare_only:
        print("database ready", flush=True)
        return 0
    supervisor = Supervisor(children(env, args.replica_ports, args.action_ports, args.port, args.workers,
                                     args.model), args.state)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        supervisor.start()
        if not supervisor.wait_ready(900):
            print("The production setup did not start; see the log above.", file=sys.stderr)
            return 1
        print(f"\n  The assistant is ready ({len(args.replica_ports)} replicas behind a load balancer). "
              f"Open http://localhost:{args.port}/webhooks/webchat/\n  Press Ctrl-C to stop.\n", flush=True)
        while True:
            if args.no_restart and not all(c.alive for c in supervisor.children):
                print("A process stopped; stopping the others.", file=sys.stderr)
                return 1
            supervisor.tend()
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
        return 0
    finally:
        supervisor.stop()


if __name__ == "__main__":
    sys.exit(main())

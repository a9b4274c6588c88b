"""Starts the whole assistant on this machine: `make run` (and `make chat` with --shell).

The action server, the Rasa server (web chat, channels, and its HTTP API with a token the
reminder worker uses), the reminder worker and the staff dashboard run as child processes.
The URLs to open are printed once the servers answer; Ctrl-C stops every process. The
dashboard stopping does not stop the assistant.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Dict, List

from bot.programme import ProgrammeError, load_all

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL = ROOT / "models" / "assistant.tar.gz"


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def rasa_server_command(*args: str) -> List[str]:
    """`rasa <args>` through `bot.rasa_server`, Rasa's command line with its speed-ups, in this Python."""
    return [sys.executable, "-m", "bot.rasa_server", *args]


def action_server(port: int) -> List[str]:
    """Command line of the action server."""
    return [str(BIN / "rasa"), "run", "actions", "--actions", "actions", "--port", str(port)]


def rasa_server(port: int, action_port: int, extra: List[str]) -> List[str]:
    """Command line of the Rasa server."""
    return rasa_server_command("run", "--model", str(MODEL), "--endpoints", "bot/endpoints.yml",
                               "--credentials", "bot/credentials.yml", "--port", str(port), *extra)


def reminder_worker(port: int) -> List[str]:
    """Command line of the reminder worker."""
    return [sys.executable, "-m", "bot.reminder_worker", "--rasa-url", f"http://127.0.0.1:{port}"]


def dashboard(port: int) -> List[str]:
    """Command line of the staff dashboard (analytics; accounts: `python -m bot.dashboard users add`)."""
    return [sys.executable, "-m", "bot.dashboard", "serve", "--host", os.environ.get("DASHBOARD_HOST", "127.0.0.1"),
            "--port", str(port)]


def wait_for(url: str, seconds: float, processes: List[subprocess.Popen]) -> bool:
    """Polls `url` until it answers, a process dies, or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(1)
    return False


def stop(processes: List[subprocess.Popen]) -> None:
    """Stops every child process: politely, then firmly."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> int:
    """Starts the processes and waits for Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shell", action="store_true", help="a terminal chat instead of the server")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 5005)))
    parser.add_argument("--action-port", type=int, default=int(os.environ.get("ACTION_PORT", 5055)))
    parser.add_argument("--dashboard-port", type=int, default=int(os.environ.get("DASHBOARD_PORT", 5006)))
    args = parser.parse_args()
    os.chdir(ROOT)
    try:
        programmes = load_all()
    except ProgrammeError as error:
        print(f"Programme configuration error: {error}", file=sys.stderr)
        return 2
    if not MODEL.exists():
        print("No trained model: run `make run`, which trains it.", file=sys.stderr)
        return 2
    print(f"Programmes: {', '.join(programmes)}")
    env = _env()
    env.setdefault("RASA_API_TOKEN", secrets.token_urlsafe(24))
    processes = [subprocess.Popen(action_server(args.action_port), env=env)]
    try:
        if args.shell:
            if not wait_for(f"http://127.0.0.1:{args.action_port}/health", 120, processes):
                print("The action server did not start.", file=sys.stderr)
                return 1
            shell = rasa_server_command("shell", "--model", str(MODEL), "--endpoints", "bot/endpoints.yml")
            return subprocess.call(shell, env=env)
        api = ["--enable-api", "--auth-token", env["RASA_API_TOKEN"]]
        processes.append(subprocess.Popen(rasa_server(args.port, args.action_port, api), env=env))
        if not wait_for(f"http://127.0.0.1:{args.port}/webhooks/webchat/", 600, processes):
            print("The assistant did not start; see the log above.", file=sys.stderr)
            return 1
        processes.append(subprocess.Popen(reminder_worker(args.port), env=env))
        staff = subprocess.Popen(dashboard(args.dashboard_port), env=env)
        processes.append(staff)
        dashboard_ready = wait_for(f"http://127.0.0.1:{args.dashboard_port}/health", 60, [staff])
        print(f"\n  The assistant is ready. Open http://localhost:{args.port}/webhooks/webchat/\n"
              + (f"  Staff dashboard: http://localhost:{args.dashboard_port}/ "
                 f"(accounts: python -m bot.dashboard users add NAME --role admin)\n" if dashboard_ready else
                 "  The staff dashboard did not start; see the log above.\n")
              + "  Press Ctrl-C to stop.\n", flush=True)
        while all(p.poll() is None for p in processes if p is not staff):
            if staff.poll() is not None and dashboard_ready:
                print("The staff dashboard stopped; the assistant keeps running.", file=sys.stderr)
                dashboard_ready = False
            time.sleep(1)
        print("A process stopped; stopping the others.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping…")
        return 0
    finally:
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`: what the assistant costs per message, measured on this machine.

Starts the full assistant (Rasa server with the trained model, the action server, the catalog
NLG, the SQL tracker store on a SQLite file of its own) and, for comparison, a minimal Rasa bot
trained here (one intent, one response, Rasa's own in-memory stores, same Rasa). Through the
REST channel it measures, for 1, 10 and 50 concurrent conversations, the reply latency (p50,
p95, p99) and the throughput; then the latency at the start and at the end of one long
conversation; the memory of each process at rest and under load; the model's size and, when
`make model` recorded it, its training time. Then, on this machine's PostgreSQL and Redis
(`bot/bench_prod.py`): the production setup with two replicas against one replica on the same
load, and the cost of the long conversation once its session has expired. Prints tables and
writes `reports/bench.json`, also when a part fails (its error is in the report).

    python -m bot.bench [--messages 200] [--long 500] [--concurrency 1 10 50]
                        [--replica-concurrency 10 50] [--no-production]
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

from bot.run import BIN, MODEL, ROOT, _env, rasa_server_command, stop, wait_for

REPORT = ROOT / "reports" / "bench.json"
TRAIN_TIME = ROOT / "var" / "train_seconds.txt"
MESSAGES = [
    "hello", "how do I apply for a loan", "what documents do I need for a loan",
    "bonjour, comment demander une subvention ?", "ما هي الوثائق المطلوبة لتسجيل مشروع",
    "سلام، برای قرض چه مدارکی لازم است", "زه څنګه پور واخلم", "کاروبار رجسٹر کرنے میں کتنا خرچ آتا ہے",
    "thank you", "what is the interest rate",
]
MINIMAL_DOMAIN = """version: "3.1"
intents: [greet]
responses:
  utter_greet:
    - text: "Hello!"
"""
MINIMAL_NLU = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - hi
    - good morning
    - salam
    - bonjour
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
"""
MINIMAL_CONFIG = """recipe: default.v1
language: xx
assistant_id: minimal-bench
pipeline:
  - name: KeywordIntentClassifier
policies:
  - name: RulePolicy
"""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB (Linux /proc)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


class Sampler:
    """Samples the memory of some processes every 0.5 s, keeping the peak."""

    def __init__(self, processes: Dict[str, subprocess.Popen]) -> None:
        self.processes, self.peak = processes, {name: 0.0 for name in processes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, process in self.processes.items():
                self.peak[name] = max(self.peak[name], rss_mb(process.pid))
            time.sleep(0.5)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def percentile(values: List[float], share: float) -> float:
    """The `share` percentile of `values` (nearest rank), in milliseconds."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(share * len(ordered) + 0.5)) - 1))
    return round(ordered[index] * 1000, 1)


async def load(url: str, concurrency: int, messages: int, tag: str) -> Dict[str, float]:
    """`messages` messages spread over `concurrency` conversations sent at once, each
    conversation waiting for its reply before its next message."""
    import aiohttp

    latencies: List[float] = []
    errors = 0
    per_conversation = max(1, messages // concurrency)
    counter = itertools.count()

    async def conversation(client, index: int) -> None:
        nonlocal errors
        sender = f"bench-{tag}-{concurrency}-{index}-{os.getpid()}"
        for turn in range(per_conversation):
            text = MESSAGES[next(counter) % len(MESSAGES)]
            began = time.perf_counter()
            try:
                async with client.post(url, json={"sender": sender, "message": text}) as answer:
                    await answer.read()
                    if answer.status != 200:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - began)

    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout,
                                     connector=aiohttp.TCPConnector(limit=concurrency + 5)) as client:
        began = time.perf_counter()
        await asyncio.gather(*(conversation(client, i) for i in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {"concurrency": concurrency, "messages": len(latencies), "errors": errors,
            "p50_ms": percentile(latencies, 0.50), "p95_ms": percentile(latencies, 0.95),
            "p99_ms": percentile(latencies, 0.99), "throughput_per_s": round(len(latencies) / elapsed, 2)}


def compare(measured: List[Dict[str, float]], baseline: List[Dict[str, float]], throughput_key: str,
            digits: int = 2) -> List[Dict[str, float]]:
    """Per concurrency level, `measured` against `baseline`: the throughput ratio (under
    `throughput_key`) and the p95 ratio."""
    return [{"concurrency": a["concurrency"],
             throughput_key: round(a["throughput_per_s"] / b["throughput_per_s"], digits),
             "p95_ratio": round(a["p95_ms"] / b["p95_ms"], 2)}
            for a, b in zip(measured, baseline)]


LONG_SENDER = f"bench-long-{os.getpid()}"


async def long_conversation(url: str, turns: int, sender: str = LONG_SENDER) -> Dict[str, float]:
    """One conversation of `turns` messages: mean latency of the first and last ten."""
    import aiohttp

    latencies: List[float] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as client:
        for turn in range(turns):
            began = time.perf_counter()
            async with client.post(url, json={"sender": sender, "message": MESSAGES[turn % len(MESSAGES)]}) as answer:
                await answer.read()
            latencies.append(time.perf_counter() - began)
    head, tail = latencies[:10], latencies[-10:]
    block = max(10, turns // 10)
    return {"turns": turns, "first_10_mean_ms": round(statistics.mean(head) * 1000, 1),
            "last_10_mean_ms": round(statistics.mean(tail) * 1000, 1),
            f"mean_ms_per_{block}_turns": [round(statistics.mean(latencies[i:i + block]) * 1000, 1)
                                           for i in range(0, turns, block)]}


def start(command: List[str], env: Dict[str, str], log: Path) -> subprocess.Popen:
    """Starts a process with its output in `log`."""
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def train_minimal(folder: Path, env: Dict[str, str]) -> Path:
    """Trains the minimal bot in `folder`; returns its model."""
    (folder / "domain.yml").write_text(MINIMAL_DOMAIN)
    (folder / "data.yml").write_text(MINIMAL_NLU)
    (folder / "config.yml").write_text(MINIMAL_CONFIG)
    subprocess.run([str(BIN / "rasa"), "train", "--config", "config.yml", "--domain", "domain.yml", "--data",
                    "data.yml", "--out", "models", "--fixed-model-name", "minimal"], cwd=folder, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return folder / "models" / "minimal.tar.gz"


def table(results: Dict[str, List[Dict[str, float]]]) -> str:
    """The latency table, one row per bot and concurrency."""
    lines = ["| bot | concurrent | messages | errors | p50 ms | p95 ms | p99 ms | msg/s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for bot, rows in results.items():
        for row in rows:
            lines.append(f"| {bot} | {row['concurrency']} | {row['messages']} | {row['errors']} | {row['p50_ms']} | "
                         f"{row['p95_ms']} | {row['p99_ms']} | {row['throughput_per_s']} |")
    return "\n".join(lines)


def stored_events(tracker_db: Path, sender: str) -> List[dict]:
    """The events of one conversation in the SQLite tracker store, oldest first."""
    import sqlite3

    with sqlite3.connect(tracker_db) as db:
        rows = db.execute("select data from events where sender_id = ? order by id", (sender,)).fetchall()
    return [json.loads(data) for (data,) in rows]


def replica_table(rows: Dict[str, List[Dict[str, float]]]) -> str:
    """The latency table of the production setup, one row per replica count and concurrency."""
    return table(rows).replace("| bot |", "| setup |", 1)


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the benchmark; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200, help="messages per concurrency level")
    parser.add_argument("--long", type=int, default=500, help="turns of the long conversation")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 10, 50])
    parser.add_argument("--replica-concurrency", type=int, nargs="*", default=[10, 50],
                        help="concurrency levels of the two-replicas-against-one runs")
    parser.add_argument("--no-production", action="store_true",
                        help="skip the PostgreSQL and Redis part (replicas, session expiry)")
    args = parser.parse_args(argv)
    if not MODEL.exists():
        print("No trained model: run `make model` first.", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    env = dict(_env(), DATABASE_URL=f"sqlite:///{work / 'assistant.db'}")
    subprocess.run([sys.executable, "-m", "bot.storage", "upgrade"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    endpoints = work / "endpoints.yml"
    action_port, full_port, minimal_port = free_port(), free_port(), free_port()
    endpoints.write_text(
        f"action_endpoint:\n  url: http://127.0.0.1:{action_port}/webhook\n"
        f"tracker_store:\n  type: bot.tracker_store.PrivacySQLTrackerStore\n  dialect: sqlite\n"
        f"  db: {work / 'tracker.db'}\nlock_store:\n  type: in_memory\nnlg:\n  type: bot.nlg.CatalogNLG\n")
    credentials = work / "credentials.yml"
    credentials.write_text("rest: {}\n")
    report: Dict[str, object] = {"machine": f"{os.cpu_count()} cores", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                           time.gmtime())}
    status = 0
    try:
        ports = (action_port, full_port, minimal_port)
        if not measure_single(args, work, env, endpoints, credentials, ports, report):
            return 1
        if not args.no_production:
            from bot import bench_prod

            long_events = stored_events(work / "tracker.db", LONG_SENDER) if args.long else []
            try:
                report["production"] = bench_prod.measure(
                    env, work, args.replica_concurrency, args.messages, long_events, MESSAGES,
                    load=load, rss_mb=rss_mb, sampler=Sampler, free_port=free_port)
            except Exception as error:  # PostgreSQL or Redis missing: the single-server figures stand
                report["production"] = {"error": f"{type(error).__name__}: {error}"}
                status = 1
    finally:
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print_summary(report)
    shutil.rmtree(work, ignore_errors=True)
    return status


def measure_single(args, work: Path, env: Dict[str, str], endpoints: Path, credentials: Path, ports,
                   report: Dict[str, object]) -> bool:
    """The full assistant on one server (SQLite) against the minimal bot; False if one cannot start."""
    action_port, full_port, minimal_port = ports
    processes: Dict[str, subprocess.Popen] = {}
    try:
        began = time.perf_counter()
        minimal_model = train_minimal(work, env)
        report["minimal_training_s"] = round(time.perf_counter() - began, 1)
        processes["actions"] = start([str(BIN / "rasa"), "run", "actions", "--actions", "actions", "--port",
                                      str(action_port)], env, work / "actions.log")
        began = time.perf_counter()
        processes["rasa"] = start(rasa_server_command("run", "--model", str(MODEL), "--endpoints", str(endpoints),
                                                      "--credentials", str(credentials), "--port", str(full_port)),
                                  env, work / "rasa.log")
        # the framework's own cost: the minimal bot runs Rasa as shipped, without bot.rasa_server's speed-ups
        processes["minimal"] = start([str(BIN / "rasa"), "run", "--model", str(minimal_model), "--credentials",
                                      str(credentials), "--port", str(minimal_port)], env, work / "minimal.log")
        for name, port in (("rasa", full_port), ("minimal", minimal_port)):
            if not wait_for(f"http://127.0.0.1:{port}/", 600, list(processes.values())):
                print(f"the {name} server did not start; see {work}", file=sys.stderr)
                report["error"] = f"the {name} server did not start"
                return False
        report["startup_s"] = round(time.perf_counter() - began, 1)
        time.sleep(2)
        report["memory_at_rest_mb"] = {name: rss_mb(p.pid) for name, p in processes.items()}
        full_url = f"http://127.0.0.1:{full_port}/webhooks/rest/webhook"
        minimal_url = f"http://127.0.0.1:{minimal_port}/webhooks/rest/webhook"
        asyncio.run(load(full_url, 1, 10, "warmup"))
        asyncio.run(load(minimal_url, 1, 10, "warmup"))
        results: Dict[str, List[Dict[str, float]]] = {"assistant": [], "minimal": []}
        with Sampler(processes) as sampler:
            for concurrency in args.concurrency:
                messages = args.messages if concurrency > 1 else max(20, args.messages // 4)
                results["assistant"].append(asyncio.run(load(full_url, concurrency, messages, "full")))
                results["minimal"].append(asyncio.run(load(minimal_url, concurrency, messages, "min")))
                print(table({k: v[-1:] for k, v in results.items()}).split("\n", 2)[-1], flush=True)
        report["memory_under_load_mb"] = sampler.peak
        report["latency"] = results
        report["ratios"] = compare(results["assistant"], results["minimal"], "throughput_share", 3)
        if args.long:
            report["long_conversation"] = asyncio.run(long_conversation(full_url, args.long))
        report["model_mb"] = round(MODEL.stat().st_size / 1e6, 1)
        report["training_s"] = float(TRAIN_TIME.read_text()) if TRAIN_TIME.exists() else None
        return True
    finally:
        stop(list(processes.values()))


def print_summary(report: Dict[str, object]) -> None:
    """Prints the tables and figures of `report`."""
    print()
    print(table(report["latency"]))
    print()
    for ratio in report["ratios"]:
        print(f"concurrency {ratio['concurrency']}: assistant keeps {ratio['throughput_share']:.0%} of the minimal "
              f"bot's throughput; p95 is {ratio['p95_ratio']}x (targets: >= 70%, <= 1.5x)")
    if report.get("long_conversation"):
        long = report["long_conversation"]
        print(f"long conversation: turns 1-10 {long['first_10_mean_ms']} ms, turns {long['turns'] - 9}-"
              f"{long['turns']} {long['last_10_mean_ms']} ms")
        blocks = next((v for k, v in long.items() if k.startswith("mean_ms_per_")), [])
        print(f"  mean per block of {long['turns'] // max(1, len(blocks))} turns (ms): {blocks}")
    print(f"memory at rest (MB): {report['memory_at_rest_mb']}")
    print(f"memory under load, peak (MB): {report['memory_under_load_mb']}")
    print(f"model: {report['model_mb']} MB; training: {report['training_s']} s; minimal bot training: "
          f"{report['minimal_training_s']} s; start-up of both servers: {report['startup_s']} s")
    production = report.get("production") or {}
    if production.get("error"):
        print(f"production setup (PostgreSQL, Redis): not measured: {production['error']}")
    elif production:
        print()
        print(replica_table(production["latency"]))
        for row in production["two_vs_one"]:
            print(f"concurrency {row['concurrency']}: two replicas give {row['throughput_ratio']}x the throughput "
                  f"of one; p95 {row['p95_ratio']}x")
        print(f"production memory at rest (MB): {production['memory_at_rest_mb']}")
        print(f"production memory under load, peak (MB): {production['memory_under_load_mb']}")
        expiry = production.get("session_expiry")
        if expiry:
            print(f"\nlong conversation on PostgreSQL ({expiry['copied_turns']} turns copied; session expiry "
                  f"{expiry['session_expiration_minutes']:g} min), ten messages each:")
            for name in ("new_conversation", "long_same_session", "long_expired_session"):
                row = expiry[name]
                print(f"  {name.replace('_', ' ')}: first {row['first_ms']} ms, then {row['next_mean_ms']} ms mean; "
                      f"{row['events_stored']} events stored, {row['events_in_latest_session']} in the latest session")
    print(f"written to {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())

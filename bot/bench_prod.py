"""The production part of `make bench`: two replicas against one, and what session expiry does
to the cost of a long conversation, on this machine's PostgreSQL and Redis.

`bot.run_prod` starts the production setup (two Rasa replicas with `bot/endpoints.prod.yml`, two
action servers, its load balancer) on a PostgreSQL database and a Redis key prefix of the
benchmark's own, removed afterwards. A second balancer in front of the first replica alone gives
"one replica" on the very same processes, so the two runs differ only in the number of replicas.

Long conversations: Rasa loads a conversation with `tracker_store.retrieve`, which for the SQL
store selects only the events since the latest `session_started` (`retrieve_full_tracker`, all
sessions, serves the HTTP API's tracker endpoint). So a long conversation is cheap again once a
new session starts. Measured here by copying the benchmark's long conversation twice into
PostgreSQL (Rasa's `PUT .../tracker/events`): once as it is, once moved back in time by more
than the domain's `session_expiration_time`, then sending ten messages to each and to a new one.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Dict, List, Optional

from bot.run import ROOT, stop, wait_for

MESSAGES_AFTER = 10  # messages sent to each copied conversation


def _api(url: str, token: str, method: str = "GET", body: Optional[object] = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}?token={token}", data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as answer:
        return json.loads(answer.read())


def _ready(urls: List[str], seconds: float, process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + seconds
    for url in urls:
        if not wait_for(url, max(1.0, deadline - time.monotonic()), [process]):
            return False
    return True


async def _turns(url: str, sender: str, texts: List[str]) -> List[float]:
    """Sends `texts` one after the other in one conversation; each reply's latency in seconds."""
    import aiohttp

    latencies = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as client:
        for text in texts:
            began = time.perf_counter()
            async with client.post(url, json={"sender": sender, "message": text}) as answer:
                await answer.read()
                answer.raise_for_status()
            latencies.append(time.perf_counter() - began)
    return latencies


def _session_sizes(database_url: str, sender: str) -> Dict[str, int]:
    """Events stored for `sender`, and those of its latest session (what `retrieve` loads)."""
    import sqlalchemy as sa

    from bot import storage

    with storage.engine(database_url).connect() as db:
        stored = db.execute(sa.text("select count(*) from events where sender_id = :s"), {"s": sender}).scalar()
        latest = db.execute(sa.text(
            "select count(*) from events where sender_id = :s and timestamp >= coalesce((select max(timestamp) "
            "from events where sender_id = :s and type_name = 'session_started'), 0)"), {"s": sender}).scalar()
    return {"events_stored": int(stored), "events_in_latest_session": int(latest)}


def session_expiry(balancer: str, replica: str, token: str, database_url: str, events: List[dict],
                   texts: List[str]) -> Dict[str, object]:
    """Latency of ten messages in a new conversation, in a copy of the long one, and in a copy
    whose session has expired; with the events stored and loaded for each."""
    rest = f"{balancer}/webhooks/rest/webhook"
    expiry_minutes = float(_api(f"{replica}/domain", token)["session_config"]["session_expiration_time"])
    shift = expiry_minutes * 60 + 600
    tag = uuid.uuid4().hex[:8]
    same, expired, fresh = f"bench-long-same-{tag}", f"bench-long-expired-{tag}", f"bench-fresh-{tag}"
    _api(f"{replica}/conversations/{same}/tracker/events", token, "PUT", events)
    _api(f"{replica}/conversations/{expired}/tracker/events", token, "PUT",
         [dict(e, timestamp=e["timestamp"] - shift) for e in events])
    sent = [texts[i % len(texts)] for i in range(MESSAGES_AFTER)]
    result: Dict[str, object] = {"session_expiration_minutes": expiry_minutes,
                                 "copied_turns": sum(1 for e in events if e.get("event") == "user")}
    for name, sender in (("new_conversation", fresh), ("long_same_session", same), ("long_expired_session", expired)):
        latencies = asyncio.run(_turns(rest, sender, sent))
        result[name] = {"first_ms": round(latencies[0] * 1000, 1),
                        "next_mean_ms": round(statistics.mean(latencies[1:]) * 1000, 1),
                        **_session_sizes(database_url, sender)}
    return result


def _drop_database(admin_url: str, name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url, future=True, isolation_level="AUTOCOMMIT")
    with engine.connect() as db:
        db.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def _forget_redis(prefix: str) -> None:
    import redis

    store = redis.Redis(host=os.environ.get("REDIS_HOST", "127.0.0.1"), port=int(os.environ.get("REDIS_PORT", 6379)))
    for key in store.scan_iter(f"{prefix}:*"):
        store.delete(key)


def _stop_supervisor(supervisor: subprocess.Popen, state: Path) -> None:
    """Stops `bot.run_prod` (which stops its children); kills them all if it does not."""
    if supervisor.poll() is None:
        supervisor.send_signal(signal.SIGTERM)
    try:
        supervisor.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pids = [c["pid"] for c in json.loads(state.read_text()).values() if c["pid"]] if state.exists() else []
        for pid in [supervisor.pid, *pids]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        supervisor.wait()


def measure(env: Dict[str, str], work: Path, concurrency: List[int], messages: int, long_events: List[dict],
            texts: List[str], load: Callable, rss_mb: Callable, sampler: Callable, free_port: Callable) -> Dict:
    """Starts the production setup, measures, stops it; the figures for the report."""
    import sqlalchemy as sa

    from bot import storage
    from bot.run_prod import settings

    name, prefix, token = f"bench_prod_{os.getpid()}", f"bench{os.getpid()}", uuid.uuid4().hex
    base = {k: v for k, v in env.items() if k != "DATABASE_URL"}
    prod_env = settings(dict(base, POSTGRES_DB=name, REDIS_KEY_PREFIX=prefix, RASA_API_TOKEN=token))
    database_url = prod_env["DATABASE_URL"]
    port, single_port = free_port(), free_port()
    replicas, actions = [free_port(), free_port()], [free_port(), free_port()]
    state = work / "prod-state.json"
    command = [sys.executable, "-m", "bot.run_prod", "--port", str(port), "--workers", "0", "--no-restart",
               "--replica-ports", ",".join(map(str, replicas)), "--action-ports", ",".join(map(str, actions)),
               "--state", str(state)]
    report: Dict[str, object] = {"setup": "2 Rasa replicas (bot/endpoints.prod.yml: PostgreSQL tracker store, "
                                          "Redis lock store), 2 action servers, bot/loadbalancer.py"}
    began = time.perf_counter()
    supervisor = subprocess.Popen(command, cwd=ROOT, env=prod_env, stdout=(work / "prod.log").open("w"),
                                  stderr=subprocess.STDOUT, start_new_session=True)
    single = None
    try:
        urls = [f"http://127.0.0.1:{p}/" for p in replicas] + [f"http://127.0.0.1:{port}/_lb/status"]
        if not _ready(urls, 900, supervisor):
            raise RuntimeError(f"the production setup did not start; see {work / 'prod.log'}")
        report["startup_s"] = round(time.perf_counter() - began, 1)
        single = subprocess.Popen([sys.executable, "-m", "bot.loadbalancer", "--port", str(single_port),
                                   f"http://127.0.0.1:{replicas[0]}"], cwd=ROOT, env=prod_env,
                                  stdout=(work / "single.log").open("w"), stderr=subprocess.STDOUT)
        if not _ready([f"http://127.0.0.1:{single_port}/_lb/status"], 60, single):
            raise RuntimeError("the single-replica balancer did not start")
        pids = {n: SimpleNamespace(pid=c["pid"]) for n, c in json.loads(state.read_text()).items() if c["pid"]}
        time.sleep(2)
        report["memory_at_rest_mb"] = {n: rss_mb(p.pid) for n, p in pids.items()}
        for replica in replicas:
            asyncio.run(load(f"http://127.0.0.1:{replica}/webhooks/rest/webhook", 1, 10, "warmup"))
        rows: Dict[str, list] = {"one replica": [], "two replicas": []}
        with sampler(pids) as peak:
            for level in concurrency:
                rows["one replica"].append(asyncio.run(load(
                    f"http://127.0.0.1:{single_port}/webhooks/rest/webhook", level, messages, "one")))
                rows["two replicas"].append(asyncio.run(load(
                    f"http://127.0.0.1:{port}/webhooks/rest/webhook", level, messages, "two")))
                print(f"  replicas, {level} concurrent: one {rows['one replica'][-1]['throughput_per_s']} msg/s, "
                      f"two {rows['two replicas'][-1]['throughput_per_s']} msg/s", flush=True)
        report["memory_under_load_mb"] = peak.peak
        report["latency"] = rows
        from bot.bench import compare  # bench imports this module

        report["two_vs_one"] = compare(rows["two replicas"], rows["one replica"], "throughput_ratio")
        if long_events:
            report["session_expiry"] = session_expiry(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{replicas[0]}",
                                                      token, database_url, long_events, texts)
    finally:
        if single is not None:
            stop([single])
        _stop_supervisor(supervisor, state)
        storage.engine(database_url).dispose()
        try:
            _drop_database(str(sa.engine.make_url(database_url).set(database="postgres")), name)
            _forget_redis(prefix)
        except Exception as error:  # cleanup only: say so, keep the figures
            print(f"could not remove the benchmark's database or Redis keys: {error}", file=sys.stderr)
    return report

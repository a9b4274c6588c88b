"""The reminder worker: sends due reminders through Rasa, so they are rendered like any reply.

    python -m bot.reminder_worker --rasa-url http://127.0.0.1:5005 --token SECRET [--once]

Each round claims due reminders with a lease and asks Rasa to trigger `EXTERNAL_reminder`
on the conversation (`POST /conversations/<id>/trigger_intent`), on the channel the user wrote
from. Rasa answers once the reply went out through the channel and the conversation was saved;
the worker marks the reminder sent only when that answer shows the reminder in the
conversation. A failed call (Rasa unreachable, an error status, no reminder rendered) gives the
reminder back with a growing delay; a worker that dies leaves it to another once the lease ends.
Several workers can run side by side. Keep the lease longer than the HTTP timeout. Why this is
at-least-once delivery with no duplicate on retries: see `bot.reminders`.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Optional

from bot import profiles, reminders

logger = logging.getLogger("bot.reminder_worker")


class Worker:
    """Claims and triggers due reminders."""

    def __init__(self, rasa_url: str, token: str, lease: dt.timedelta, batch: int = 20,
                 timeout: float = 30, pause: float = 0.0) -> None:
        self.rasa_url = rasa_url.rstrip("/")
        self.token = token
        self.lease = lease
        self.batch = batch
        self.timeout = timeout
        self.pause = pause
        self.name = reminders.new_worker_id()
        self.stopping = False

    def trigger(self, reminder: reminders.Reminder) -> dict:
        """Asks Rasa to run the reminder on the user's conversation; returns Rasa's answer
        (the conversation after it). Raises on a network failure or an error status."""
        # "+" and ":" stay as they are: Rasa's server (Sanic) does not decode "%2B" in the path, so a
        # quoted "+216..." would name another, empty conversation
        sender = urllib.parse.quote(reminder.sender_id, safe="+:@")
        query = urllib.parse.urlencode({"output_channel": reminder.channel, "token": self.token})
        body = json.dumps({"name": reminders.REMINDER_INTENT, "entities": {"reminder_id": str(reminder.id)}})
        request = urllib.request.Request(
            f"{self.rasa_url}/conversations/{sender}/trigger_intent?{query}", data=body.encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read() or b"{}")

    def deliver(self, reminder: reminders.Reminder) -> bool:
        """Triggers one reminder; marks it sent when Rasa rendered it, else gives it back. True if sent."""
        profile = profiles.get(reminder.sender_id)
        if profile is not None and profile.opted_out:
            reminders.cancel_all(reminder.sender_id)
            logger.info("reminder %s cancelled: the user opted out", reminder.id)
            return False
        try:
            answer = self.trigger(reminder)
            events = (answer.get("tracker") or {}).get("events") or []
            if not reminders.rendered_in(events, reminder.id):
                raise RuntimeError("Rasa answered without rendering the reminder")
        except (OSError, urllib.error.URLError, RuntimeError, ValueError, AttributeError) as error:
            current = reminders.get(reminder.id)
            if current is not None and current.status == reminders.CANCELLED:
                logger.info("reminder %s was cancelled while being sent", reminder.id)
                return False
            retry = dt.timedelta(minutes=2 ** min(reminder.attempts, 6))
            logger.warning("reminder %s not sent (%s: %s); retry in %s", reminder.id, type(error).__name__,
                           str(error)[:120], retry)
            reminders.release(reminder.id, self.name, f"{type(error).__name__}: {error}", retry)
            return False
        reminders.mark_sent(reminder.id)
        logger.info("reminder %s sent", reminder.id)
        return True

    def run_once(self, now: Optional[dt.datetime] = None) -> int:
        """One round: claims what is due (at `now`, default the clock), triggers it; returns how
        many were handled."""
        handled = 0
        for reminder in reminders.claim_due(self.name, self.lease, self.batch, now=now):
            if self.stopping:
                break
            self.deliver(reminder)
            handled += 1
            if self.pause:
                time.sleep(self.pause)
        return handled

    def run_forever(self, poll: float) -> None:
        """Rounds until SIGTERM or SIGINT."""
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        logger.info("reminder worker %s started", self.name)
        while not self.stopping:
            try:
                if self.run_once() == 0:
                    time.sleep(poll)
            except Exception:  # the database was unreachable: try again next round
                logger.exception("reminder round failed")
                time.sleep(poll)


def main(argv: Optional[list] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rasa-url", default=os.environ.get("RASA_URL", "http://127.0.0.1:5005"))
    parser.add_argument("--token", default=os.environ.get("RASA_API_TOKEN"))
    parser.add_argument("--poll", type=float, default=15.0, help="seconds between rounds when idle")
    parser.add_argument("--lease", type=float, default=120.0, help="seconds a claim lasts")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between two sends")
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("the Rasa API token is needed (--token or RASA_API_TOKEN)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    worker = Worker(args.rasa_url, args.token, dt.timedelta(seconds=args.lease), args.batch, pause=args.pause)
    if args.once:
        worker.run_once()
    else:
        worker.run_forever(args.poll)
    return 0


if __name__ == "__main__":
    sys.exit(main())

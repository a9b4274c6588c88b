"""`python -m bot.handoff`: manage advisors and see the queue.

    python -m bot.handoff advisors list
    python -m bot.handoff advisors add "Amina Ben Ali" telegram 123456789 --programme sample-tn --languages ar fr
    python -m bot.handoff advisors add "Omar K." sms +21671000999
    python -m bot.handoff advisors remove 3
    python -m bot.handoff queue
    python -m bot.handoff held 3
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import List, Optional

from bot.handoff import advisors, tickets
from bot.storage import utcnow


def _ticket_line(ticket: tickets.Ticket, now: dt.datetime) -> str:
    waited = int((now - ticket.created_at).total_seconds() // 60)
    holder = f" held by {ticket.advisor}" if ticket.advisor and ticket.status == tickets.CLAIMED else ""
    return (f"#{ticket.id:<5} {ticket.status:<8} {ticket.language:<3} {ticket.channel:<9} {ticket.country or '-':<3} "
            f"{ticket.reason:<18} {waited:>5} min{holder}")


def main(argv: Optional[List[str]] = None) -> int:
    """Runs one command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bot.handoff", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    people = commands.add_parser("advisors", help="list, add or remove advisors")
    actions = people.add_subparsers(dest="action", required=True)
    actions.add_parser("list")
    add = actions.add_parser("add")
    add.add_argument("name")
    add.add_argument("channel", choices=advisors.CHANNELS)
    add.add_argument("contact", help="Telegram user id, or phone number in international format")
    add.add_argument("--programme")
    add.add_argument("--languages", nargs="*", default=[])
    remove = actions.add_parser("remove")
    remove.add_argument("id", type=int)
    commands.add_parser("queue", help="tickets waiting for an advisor")
    held = commands.add_parser("held", help="the tickets one advisor holds")
    held.add_argument("advisor_id", type=int)
    args = parser.parse_args(argv)
    now = utcnow()
    if args.command == "advisors" and args.action == "list":
        for advisor in advisors.all_advisors():
            state = "" if advisor.active else " (inactive)"
            print(f"{advisor.id:<4} {advisor.name:<30} {advisor.channel:<9} {advisor.contact:<24} "
                  f"{advisor.programme or '*':<12} {' '.join(advisor.languages)}{state}")
    elif args.command == "advisors" and args.action == "add":
        try:
            advisor = advisors.add(args.name, args.channel, args.contact, args.programme, tuple(args.languages))
        except advisors.AdvisorError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"advisor {advisor.id} registered: {advisor.name}, {advisor.channel} {advisor.contact}")
    elif args.command == "advisors":
        if not advisors.deactivate(args.id):
            print(f"error: no active advisor {args.id}", file=sys.stderr)
            return 1
        print(f"advisor {args.id} can no longer take tickets")
    elif args.command == "queue":
        waiting = tickets.queue()
        for ticket in waiting:
            print(_ticket_line(ticket, now))
        print(f"{len(waiting)} waiting")
    else:
        held_now = tickets.held_by(args.advisor_id)
        for ticket in held_now:
            print(_ticket_line(ticket, now))
        print(f"{len(held_now)} held")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reminders of repayments: set them, stop them, and render one when the worker triggers it."""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.calculator import schedule_of
from actions.context import entity
from bot import loan_book, profiles, reminders
from bot import programme as programmes


class ActionSetReminders(Action):
    """Schedules a reminder before each payment: of the user's actual loan when staff imported it,
    else of their latest calculation."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_set_reminders"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Stores the reminders and says when the first one comes."""
        channel = tracker.get_latest_input_channel() or "webchat"
        created = _from_actual_loan(tracker.sender_id, channel)
        calculation = tracker.get_slot("loan_calculation")
        if not created and calculation:
            programme, _, schedule = schedule_of(calculation)
            created = reminders.schedule(tracker.sender_id, channel, programme,
                                         [(i.due_date, i.total) for i in schedule.installments])
        if not created:
            dispatcher.utter_message(response="utter_reminders_nothing_to_set")
            return []
        profiles.remember(tracker.sender_id, channel, opted_out=False)
        programme = programmes.load_all()[created[0].programme]
        zone = reminders.zone_for(tracker.sender_id, programme)
        first = created[0].send_at.astimezone(zone).date()
        dispatcher.utter_message(response="utter_reminders_set", count=len(created),
                                 days=programme.data["reminders"]["days_before"], first=first.isoformat(),
                                 country=programme.country)
        return []


def _from_actual_loan(sender_id: str, channel: str) -> list:
    """Reminders of the imported instalments still ahead ([] without an imported loan)."""
    known = programmes.load_all()
    payments = [(known[i.programme], i.due_date, i.amount)
                for i in loan_book.instalments_for(sender_id, channel) if i.programme in known]
    if not payments:
        return []
    now = dt.datetime.now(dt.timezone.utc)
    if all(reminders.send_time(due, programme, now, reminders.zone_for(sender_id, programme)) is None
           for programme, due, _ in payments):
        return []  # the loan is repaid: its reminders would replace a calculation's for nothing
    return reminders.schedule_payments(sender_id, channel, payments, now)


class ActionStopReminders(Action):
    """Cancels all of the user's future reminders."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_stop_reminders"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Cancels and confirms."""
        reminders.cancel_all(tracker.sender_id)
        dispatcher.utter_message(response="utter_reminders_stopped")
        return []


class ActionSendReminder(Action):
    """Renders a due reminder triggered by the worker; the worker marks it sent once Rasa answered."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_send_reminder"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Says the reminder; says nothing if it was cancelled, sent, or is already in this conversation."""
        try:
            reminder_id = int(entity(tracker, "reminder_id") or "")
        except ValueError:
            return []
        profile = profiles.get(tracker.sender_id)
        if profile is not None and profile.opted_out:
            reminders.cancel_all(tracker.sender_id)
            return []
        reminder = reminders.to_render(reminder_id, tracker.sender_id)
        # a retry after Rasa's answer was lost: the conversation (saved after sending) has it already
        if reminder is None or reminders.rendered_in(tracker.events, reminder_id):
            return []
        programme = programmes.load_all().get(reminder.programme)
        dispatcher.utter_message(response="utter_reminder_due", amount=str(reminder.amount),
                                 due=reminder.due_date.isoformat(),
                                 country=programme.country if programme else None)
        return []

"""Reminders of repayments: set them, stop them, and render one when the worker triggers it."""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.calculator import schedule_of
from actions.context import entity
from bot import profiles, reminders
from bot import programme as programmes


class ActionSetReminders(Action):
    """Schedules a reminder before each payment of the latest calculation."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_set_reminders"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Stores the reminders and says when the first one comes."""
        calculation = tracker.get_slot("loan_calculation")
        if not calculation:
            dispatcher.utter_message(response="utter_reminders_nothing_to_set")
            return []
        programme, _, schedule = schedule_of(calculation)
        channel = tracker.get_latest_input_channel() or "webchat"
        created = reminders.schedule(tracker.sender_id, channel, programme,
                                     [(i.due_date, i.total) for i in schedule.installments])
        if not created:
            dispatcher.utter_message(response="utter_reminders_nothing_to_set")
            return []
        profiles.remember(tracker.sender_id, channel, opted_out=False)
        first = created[0].send_at.astimezone(programme.timezone).date()
        dispatcher.utter_message(response="utter_reminders_set", count=len(created),
                                 days=programme.data["reminders"]["days_before"], first=first.isoformat())
        return []


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
    """Renders a due reminder triggered by the worker, exactly once."""

    def name(self) -> Text:
        """Action name used in the domain."""
        return "action_send_reminder"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        """Marks the reminder sent, then says it; says nothing if it was sent or cancelled before."""
        try:
            reminder_id = int(entity(tracker, "reminder_id") or "")
        except ValueError:
            return []
        profile = profiles.get(tracker.sender_id)
        if profile is not None and profile.opted_out:
            reminders.cancel_all(tracker.sender_id)
            return []
        reminder = reminders.get(reminder_id)
        if reminder is None or reminder.sender_id != tracker.sender_id or not reminders.mark_sent(reminder_id):
            return []
        programme = programmes.load_all().get(reminder.programme)
        dispatcher.utter_message(response="utter_reminder_due", amount=str(reminder.amount),
                                 due=reminder.due_date.isoformat(),
                                 country=programme.country if programme else None)
        return []

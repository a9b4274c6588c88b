"""Handing a conversation to a human advisor and back.

`tickets` holds the state (one ticket per handoff, claimed atomically), `advisors` who may
answer, `hours` when the office is open, `transcript` what an advisor is shown, and `desk` the
part that runs inside the Rasa server: it announces tickets to advisors on Telegram and SMS,
carries messages both ways, and hands the conversation back to the bot.
"""

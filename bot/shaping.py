"""Shaping a rendered message for the channel it is sent on.

Channels that show buttons (Telegram, the web chat) get them as they are. Text-only channels
(SMS, WhatsApp) get a numbered menu in the text ("1. Loans"), and their reply "1" is mapped
back to the button's payload by `bot.menus`; the buttons stay on the message for that.

SMS also gets its text in GSM-7 when the language allows it, and `sms_pages`: the text cut
into pages of at most three segments, each but the last ending with the "reply MORE" hint.
The tracker keeps the whole text; the SMS channel sends the pages one by one.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from bot.i18n import Renderer

TEXT_ONLY_CHANNELS = {"sms", "whatsapp"}
PAGED_CHANNELS = {"sms"}


def menu_lines(message: Dict[Text, Any], renderer: Renderer) -> List[str]:
    """The message's buttons as numbered lines followed by the reply hint ([] without buttons)."""
    buttons = message.get("buttons") or []
    if not buttons:
        return []
    lines = [renderer.render("menu.option", {"number": i, "title": b["title"]}) for i, b in enumerate(buttons, 1)]
    return lines + [renderer.render("menu.reply_hint")]


def numbered_menu(message: Dict[Text, Any], renderer: Renderer) -> Dict[Text, Any]:
    """The message with its buttons written as a numbered list under the text."""
    lines = menu_lines(message, renderer)
    if not lines:
        return message
    shaped = dict(message)
    shaped["text"] = "\n".join(line for line in [message.get("text") or ""] + lines if line)
    return shaped


def sms_shape(message: Dict[Text, Any], renderer: Renderer) -> Dict[Text, Any]:
    """The message as SMS sends it: GSM-7 when possible, numbered menu, pages within budget."""
    from channels.sms import paginate, prefer_gsm7

    body = prefer_gsm7(message.get("text") or "")
    menu = prefer_gsm7("\n".join(menu_lines(message, renderer)))
    shaped = dict(message)
    shaped["text"] = "\n".join(part for part in (body, menu) if part)
    shaped["sms_pages"] = paginate(body, prefer_gsm7(renderer.render("sms.more")), tail=menu)
    return shaped


def shape_for_channel(message: Dict[Text, Any], channel: Text, renderer: Renderer) -> Dict[Text, Any]:
    """Adapts `message` to `channel` (the output channel's name).

    Text-only channels also learn the message's `language` (WhatsApp picks the template of that
    language outside its 24-hour window)."""
    if channel in PAGED_CHANNELS:
        return dict(sms_shape(message, renderer), language=renderer.language)
    if channel in TEXT_ONLY_CHANNELS:
        return dict(numbered_menu(message, renderer), language=renderer.language)
    return message

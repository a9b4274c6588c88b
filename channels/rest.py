"""Rasa's REST channel (`POST /webhooks/rest/webhook`), with the checks every other channel makes.

Rasa's own `RestInput` answers 500 to a body that is not a JSON object, and passes anything else
on unchecked: a missing sender lands in the shared conversation "default", an empty or 1 MB
message goes to the model. This one answers 400 to those and cleans the text like the other
channels; a valid request is served exactly as Rasa serves it (same URL, same answer, `stream`).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Text

from rasa.core.channels import rest
from sanic.exceptions import InvalidUsage
from sanic.request import Request

from channels.common import clean_text

MAX_SENDER = 128  # characters of a sender id in our tables


def _body(request: Request) -> Dict[str, Any]:
    """The request's JSON object; a 400 for anything else (malformed JSON included)."""
    body = request.json
    if not isinstance(body, dict):
        raise InvalidUsage("send a JSON object")
    return body


class RestInput(rest.RestInput):
    """Rasa's REST channel, refusing malformed requests with a 400."""

    @classmethod
    def name(cls) -> Text:
        """URL prefix and channel name, as Rasa's: `rest`."""
        return "rest"

    async def _extract_sender(self, req: Request) -> Optional[Text]:
        sender = _body(req).get("sender")
        if not isinstance(sender, str) or not 0 < len(sender) <= MAX_SENDER or clean_text(sender) != sender:
            raise InvalidUsage(f"sender must be text of 1 to {MAX_SENDER} visible characters")
        return sender

    def _extract_message(self, req: Request) -> Optional[Text]:
        text = clean_text(_body(req).get("message"))
        if not text:
            raise InvalidUsage("message must be non-empty text")
        return text

    def _extract_input_channel(self, req: Request) -> Text:
        channel = _body(req).get("input_channel")
        return channel if isinstance(channel, str) and channel else self.name()

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        """The request's `metadata` object, if any."""
        metadata = _body(request).get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidUsage("metadata must be a JSON object")
        return metadata

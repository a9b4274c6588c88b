"""The natural language generator Rasa loads from `endpoints.yml` (`nlg: type: bot.nlg.CatalogNLG`).

Actions and rules decide *what* to say: a response key and its variables. This class decides
*how*: the key is rendered from the user's language catalog with the programme's locale
formats (its shorter SMS text on SMS, where the catalog has one), button titles are translated,
and the message is shaped for the channel it goes to.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

from bot import programme as programmes
from bot.i18n import SMS_VARIANT, Renderer
from bot.buttons import button_table
from bot.shaping import PAGED_CHANNELS, shape_for_channel

logger = logging.getLogger(__name__)

# kwargs Rasa passes along with a response that are not placeholders of the text
_MESSAGE_FIELDS = {"text", "buttons", "image", "custom", "attachment", "elements", "quick_replies",
                   "json_message", "response", "template", "choices", "language"}


def renderer_for(tracker: DialogueStateTracker, language: Optional[str] = None,
                 country: Optional[str] = None) -> Renderer:
    """A renderer for the tracker's user: their language, their programme's locale and currency.

    The programme is the one of `country` (an action that has just learnt it says so), else of
    the conversation's country, else of the country the calculator asked, else of the phone
    number, else the default one.
    """
    from bot.phone import country_of

    country = (country or tracker.get_slot("country") or tracker.get_slot("loan_country")
               or country_of(tracker.sender_id))
    programme = programmes.for_country(country) or programmes.default()
    language = language or tracker.get_slot("language") or programme.default_language
    return Renderer(language, programme.country, programme.currency, programme.timezone)


class CatalogNLG(TemplatedNaturalLanguageGenerator):
    """Renders every response key from `locales/<lang>/LC_MESSAGES/messages.po`.

    It subclasses the templated generator because Rasa refreshes the domain's responses only on
    that class when a model loads; the text comes from the catalogs, buttons from
    `bot/buttons.yml`.
    """

    def __init__(self, endpoint_config: Any = None, domain: Optional[Domain] = None, **_: Any) -> None:
        super().__init__(domain.responses if domain else {})

    async def generate(
        self,
        utter_action: Text,
        tracker: DialogueStateTracker,
        output_channel: Text,
        **kwargs: Any,
    ) -> Optional[Dict[Text, Any]]:
        """Renders `utter_action` for the tracker's user on `output_channel`."""
        renderer = renderer_for(tracker, kwargs.get("language"), kwargs.get("country"))
        variables = {k: v for k, v in tracker.current_slot_values().items() if v is not None}
        variables.update({k: v for k, v in kwargs.items() if k not in _MESSAGE_FIELDS})
        if output_channel in PAGED_CHANNELS:
            renderer.variant = SMS_VARIANT
        message: Dict[Text, Any] = {"text": renderer.render(utter_action, variables)}
        buttons = self._buttons(utter_action) + list(kwargs.get("choices") or [])
        if buttons:
            message["buttons"] = [
                {"title": renderer.button_title(b["title"]), "payload": b["payload"]} for b in buttons
            ]
        return shape_for_channel(message, output_channel, renderer)

    @staticmethod
    def _buttons(utter_action: Text) -> List[Dict[Text, Any]]:
        return list(button_table().get(utter_action) or [])

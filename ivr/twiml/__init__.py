"""Pure TwiML builders. Every function returns a VoiceResponse or its XML string."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.decisions.phrases import LANG_CODES, VOICES, phrase

XML_HEADER = '<?xml version="1.0" encoding="UTF-8"?>'


class Urls:
    """Absolute callback URLs under PUBLIC_BASE_URL (what Twilio requests and signs)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")

    def __call__(self, path: str, **params: object) -> str:
        query = {k: v for k, v in params.items() if v is not None}
        url = self.base + path
        return f"{url}?{urlencode(query)}" if query else url


def say(parent: VoiceResponse | Gather, text: str, lang: str) -> None:
    """Speak `text` in the caller's language (language and voice set on every Say)."""
    parent.say(text, language=LANG_CODES.get(lang, "en-US"), voice=VOICES.get(lang, "Polly.Joanna"))


def gather(
    response: VoiceResponse,
    action: str,
    lang: str,
    *,
    timeout: int,
    num_digits: int | None = None,
    finish_on_key: str | None = None,
    hints: Iterable[str] = (),
    speech: bool = True,
) -> Gather:
    """A Gather that always calls `action`, also on silence, so the caller is re-asked."""
    hint_text = ", ".join(dict.fromkeys(h for h in hints if h))[:1000]
    return response.gather(
        action=action,
        method="POST",
        input="dtmf speech" if speech else "dtmf",
        language=LANG_CODES.get(lang, "en-US"),
        timeout=timeout,
        num_digits=num_digits,
        finish_on_key=finish_on_key,
        action_on_empty_result=True,
        speech_timeout="auto" if speech else None,
        hints=hint_text or None,
    )


def dial_number(
    response: VoiceResponse, number: str, *, action: str, timeout: int, caller_id: str | None = None
) -> None:
    """Dial one E.164 number; Twilio reports how it went to `action`."""
    dial = response.dial(action=action, method="POST", timeout=timeout, caller_id=caller_id)
    dial.number(number)


def enqueue(response: VoiceResponse, queue: str, *, action: str, wait_url: str) -> None:
    """Put the caller in a Twilio queue; `wait_url` plays while they wait."""
    response.enqueue(queue, action=action, method="POST", wait_url=wait_url, wait_url_method="POST")


def to_xml(response: VoiceResponse) -> str:
    return str(response)


def safe_fallback(operator_number: str | None, lang: str = "en") -> str:
    """The TwiML of last resort: an apology and a person, built without any other dependency.

    Used when anything inside a voice route fails, so a caller never hears Twilio's
    "application error". With no operator number it tells the caller plainly what to do.
    """
    language = LANG_CODES.get(lang, "en-US")
    voice = VOICES.get(lang, "Polly.Joanna")
    attrs = f"language={quoteattr(language)} voice={quoteattr(voice)}"
    if operator_number:
        text = escape(phrase("apology", lang))
        return (
            f"{XML_HEADER}<Response><Say {attrs}>{text}</Say>"
            f'<Dial timeout="30"><Number>{escape(operator_number)}</Number></Dial>'
            f"<Say {attrs}>{escape(phrase('apology_no_line', lang))}</Say><Hangup/></Response>"
        )
    text = escape(phrase("apology_no_line", lang))
    return f"{XML_HEADER}<Response><Say {attrs}>{text}</Say><Hangup/></Response>"

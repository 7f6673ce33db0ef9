"""What a placed callback says, as pure TwiML builders (the routes only pick one).

A machine never hears why we called or which service is calling: a voicemail box may be
heard by anyone in the household. Only the city and a number to call back.
"""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from ivr.decisions.phrases import spoken_phone
from ivr.decisions.routing import Member
from ivr.phones import national_digits
from ivr.twiml import Urls, gather, say, to_xml

ROOT = "/voice/callback"
"""URL prefix of every callback route."""

CONNECT_KEY = "1"
"""The key a resident presses to be connected to the helper."""

OPT_OUT_KEY = "9"
"""The key a resident presses to get no more automated callbacks."""

ACCEPT_KEY = "1"
"""The key a helper presses to take the call."""

GATHER_SECONDS = 8
"""How long the resident and the helper have to press a key."""

MAX_PROMPTS = 2
"""The choice is offered this many times before we say goodbye and try again later."""

MAX_HELPERS_TRIED = 10
"""On-duty helpers rung one after the other before the resident is told we will call back."""

_TEXT: dict[str, dict[str, str]] = {
    "person": {
        "en": "Hello. This is the city calling you back, as you asked. "
        "To talk with someone now, press 1. To stop these calls, press 9.",
        "es": "Hola. Le llama la ciudad para devolverle la llamada, como lo pidió. "
        "Para hablar con alguien ahora, oprima 1. Para no recibir más llamadas, oprima 9.",
    },
    "again": {
        "en": "Sorry, I did not get that.",
        "es": "Lo siento, no le entendí.",
    },
    "later": {
        "en": "We will try to call you again later. If this is an emergency, hang up and "
        "dial 9 1 1. Goodbye.",
        "es": "Intentaremos llamarle más tarde. Si es una emergencia, cuelgue y marque el "
        "9 1 1. Adiós.",
    },
    "machine": {
        "en": "Hello, this is a message from the city. We tried to call you back. "
        "Please call us at {number}. Again, {number}. Thank you.",
        "es": "Hola, este es un mensaje de la ciudad. Intentamos devolverle la llamada. "
        "Por favor llámenos al {number}. Otra vez, {number}. Gracias.",
    },
    "connecting": {
        "en": "Thank you. Please stay on the line while we connect you.",
        "es": "Gracias. Por favor no cuelgue mientras le comunicamos.",
    },
    "no_helper": {
        "en": "Sorry, no one can take your call right now. We will call you back soon. "
        "If this is an emergency, hang up and dial 9 1 1. Goodbye.",
        "es": "Lo siento, nadie puede atender su llamada ahora. Le llamaremos pronto. "
        "Si es una emergencia, cuelgue y marque el 9 1 1. Adiós.",
    },
    "opted_out": {
        "en": "You will not get more calls from us about this request. If you need help, "
        "call {number}. Goodbye.",
        "es": "No recibirá más llamadas nuestras sobre esta solicitud. Si necesita ayuda, "
        "llame al {number}. Adiós.",
    },
    "goodbye": {"en": "Thank you. Goodbye.", "es": "Gracias. Adiós."},
}

_LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}


def text(name: str, lang: str, **values: str) -> str:
    """A callback sentence in `lang` (English when unknown)."""
    texts = _TEXT[name]
    chosen = texts.get(lang) or texts["en"]
    return chosen.format(**values) if values else chosen


def spoken_number(e164: str) -> str:
    """A number as text-to-speech should read it: 5 2 0, 5 5 5, 0 3 1 1."""
    return spoken_phone(national_digits(e164))


def person_prompt(urls: Urls, attempt_id: int, lang: str, tries: int = 0) -> str:
    """A person answered: who is calling, press 1 to be connected, 9 to stop these calls."""
    response = VoiceResponse()
    g = gather(
        response,
        urls(f"{ROOT}/choice", attempt=attempt_id, lang=lang, tries=tries),
        lang,
        timeout=GATHER_SECONDS,
        num_digits=1,
        speech=False,
    )
    if tries:
        say(g, text("again", lang), lang)
    say(g, text("person", lang), lang)
    return to_xml(response)


def try_later(lang: str) -> str:
    """The resident did not choose: we will call again; goodbye."""
    response = VoiceResponse()
    say(response, text("later", lang), lang)
    response.hangup()
    return to_xml(response)


def machine_message(lang: str, call_back_number: str) -> str:
    """Voicemail: the city and a number to call back, nothing else (no reason, no service)."""
    response = VoiceResponse()
    say(response, text("machine", lang, number=spoken_number(call_back_number)), lang)
    response.hangup()
    return to_xml(response)


def opted_out(lang: str, call_back_number: str) -> str:
    """The resident pressed 9: confirmed, and where to call if they still need help."""
    response = VoiceResponse()
    say(response, text("opted_out", lang, number=spoken_number(call_back_number)), lang)
    response.hangup()
    return to_xml(response)


def no_helper(lang: str) -> str:
    """Nobody could take the call after the resident pressed 1: we will call back soon."""
    response = VoiceResponse()
    say(response, text("no_helper", lang), lang)
    response.hangup()
    return to_xml(response)


def goodbye(lang: str) -> str:
    """The conversation with the helper is over."""
    response = VoiceResponse()
    say(response, text("goodbye", lang), lang)
    response.hangup()
    return to_xml(response)


def connect_to_helper(
    urls: Urls,
    attempt_id: int,
    lang: str,
    member: Member,
    index: int,
    *,
    timeout: int,
    caller_id: str,
    announce: bool,
) -> str:
    """Ring one on-duty helper; they hear a whisper and press 1 before the resident is put through.

    One helper at a time, not all at once: with simultaneous <Number>s the first phone to pick
    up wins and the others stop ringing, so a helper who declines in the whisper would leave
    nobody. When this helper does not take it, the Dial action rings the next one.
    """
    response = VoiceResponse()
    if announce:
        say(response, text("connecting", lang), lang)
    dial = response.dial(
        action=urls(f"{ROOT}/bridged", attempt=attempt_id, lang=lang, index=index),
        method="POST",
        timeout=timeout,
        caller_id=caller_id,
    )
    whisper = urls(f"{ROOT}/whisper", attempt=attempt_id, lang=lang, member=member.member_id)
    if member.kind == "sip":
        dial.sip(member.address, url=whisper, method="POST")
    elif member.kind == "client":
        dial.client(member.address.removeprefix("client:"), url=whisper, method="POST")
    else:
        dial.number(member.address, url=whisper, method="POST")
    return to_xml(response)


def whisper(urls: Urls, attempt_id: int, lang: str, member_id: str, helper_label: str) -> str:
    """What the helper hears before the resident is connected: what it is, press 1 to take it."""
    response = VoiceResponse()
    g = gather(
        response,
        urls(f"{ROOT}/accept", attempt=attempt_id, lang=lang, member=member_id),
        "en",
        timeout=GATHER_SECONDS,
        num_digits=1,
        speech=False,
    )
    language = _LANGUAGE_NAMES.get(lang, "English")
    say(
        g,
        f"Bridgeline callback for a {helper_label}. The resident is on the line and speaks "
        f"{language}. Press 1 to take the call.",
        "en",
    )
    response.hangup()
    return to_xml(response)


def helper_accepted() -> str:
    """The helper pressed 1: an empty answer ends the whisper and Twilio bridges the two."""
    return to_xml(VoiceResponse())


def helper_declined() -> str:
    """The helper pressed something else or nothing: their leg hangs up, the next one rings."""
    response = VoiceResponse()
    response.hangup()
    return to_xml(response)


def empty() -> str:
    """An empty answer, for status callbacks (Twilio ignores it)."""
    return to_xml(VoiceResponse())

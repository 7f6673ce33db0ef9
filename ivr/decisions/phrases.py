"""Fixed sentences the self-service line speaks, in English and Spanish.

Menu labels, info texts and crisis explanations live in config/menus.yaml; these are the
sentences around them, which an operator does not need to change.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

LANG_CODES = {"en": "en-US", "es": "es-US"}
"""Twilio `language` attribute for each caller language (Say and speech recognition)."""

VOICES = {"en": "Polly.Joanna", "es": "Polly.Lupe"}
"""Twilio text-to-speech voice for each caller language."""

_PHRASES: dict[str, dict[str, str]] = {
    "choose_language": {
        "en": "For English, press 1.",
        "es": "Para español, oprima 2.",
    },
    "greeting_emergency": {
        "en": "If this is an emergency, hang up and dial 9 1 1.",
        "es": "Si es una emergencia, cuelgue y marque el 9 1 1.",
    },
    "press": {"en": "{label}, press {key}.", "es": "{label}, oprima {key}."},
    "repeat_hint": {
        "en": "To hear these choices again, press star.",
        "es": "Para escuchar las opciones otra vez, oprima asterisco.",
    },
    "not_an_option": {
        "en": "Sorry, {key} is not one of the choices.",
        "es": "Lo siento, {key} no es una de las opciones.",
    },
    "not_understood": {
        "en": "Sorry, I did not understand that.",
        "es": "Lo siento, no le entendí.",
    },
    "no_input": {
        "en": "Sorry, I did not hear a choice.",
        "es": "Lo siento, no escuché ninguna opción.",
    },
    "to_person": {
        "en": "Let me connect you to a person who can help.",
        "es": "Le comunico con una persona que le puede ayudar.",
    },
    "apology": {
        "en": "We are sorry, something went wrong on our side. Let me connect you to a person. If this is an emergency, hang up and dial 9 1 1.",
        "es": "Lo sentimos, tuvimos un problema. Le comunico con una persona. Si es una emergencia, cuelgue y marque el 9 1 1.",
    },
    "apology_no_line": {
        "en": "We are sorry, this line cannot take your call right now. If this is an emergency, hang up and dial 9 1 1. Otherwise please call again later.",
        "es": "Lo sentimos, esta línea no puede atender su llamada ahora. Si es una emergencia, cuelgue y marque el 9 1 1. Si no, llame más tarde.",
    },
    "goodbye": {"en": "Thank you for calling. Goodbye.", "es": "Gracias por llamar. Adiós."},
    "connecting_to": {
        "en": "Connecting you to {name}. Please stay on the line.",
        "es": "Le comunico con {name}. Por favor no cuelgue.",
    },
    "emergency_connecting": {
        "en": "Connecting you to 9 1 1 now. Please stay on the line.",
        "es": "Le comunico con el 9 1 1 ahora. Por favor no cuelgue.",
    },
    "emergency_failed": {
        "en": "The call to 9 1 1 did not go through. If this is an emergency, hang up and dial 9 1 1 now.",
        "es": "La llamada al 9 1 1 no se completó. Si es una emergencia, cuelgue y marque el 9 1 1 ahora.",
    },
    "line_unanswered": {"en": "{name} did not answer.", "es": "{name} no contestó."},
    "anything_else": {
        "en": "To go back to the main menu, press 8. For an emergency, press 9. Or you may hang up.",
        "es": "Para volver al menú principal, oprima 8. Para una emergencia, oprima 9. O puede colgar.",
    },
    # reports
    "report_category": {"en": "What would you like to report?", "es": "¿Qué desea reportar?"},
    "category_choice": {"en": "For {label}, press {key}.", "es": "Para {label}, oprima {key}."},
    "report_record": {
        "en": "After the tone, please describe the problem. Press the pound key when you are done.",
        "es": "Después del tono, describa el problema. Oprima la tecla de número cuando termine.",
    },
    "report_no_audio": {
        "en": "Sorry, I did not hear a description.",
        "es": "Lo siento, no escuché ninguna descripción.",
    },
    "report_saved": {
        "en": "Thank you. Your report is saved. Your reference number is {digits}. Again, your reference number is {digits}.",
        "es": "Gracias. Su reporte quedó guardado. Su número de referencia es {digits}. Otra vez, su número de referencia es {digits}.",
    },
    "report_hear_again": {
        "en": "To hear the number again, press 1.",
        "es": "Para escuchar el número otra vez, oprima 1.",
    },
    "report_not_saved": {
        "en": "We are sorry, we could not save your report right now.",
        "es": "Lo sentimos, no pudimos guardar su reporte en este momento.",
    },
    # report status
    "status_ask": {
        "en": "Please enter your {count} digit reference number, then press pound.",
        "es": "Marque su número de referencia de {count} dígitos y luego oprima la tecla de número.",
    },
    "status_bad_format": {
        "en": "A reference number has {count} digits.",
        "es": "El número de referencia tiene {count} dígitos.",
    },
    "status_unknown": {
        "en": "I could not find a report with the number {digits}.",
        "es": "No encontré ningún reporte con el número {digits}.",
    },
    "status_found": {
        "en": "Report {digits}, for {category}, {status}.",
        "es": "El reporte {digits}, sobre {category}, {status}.",
    },
    "status_received": {
        "en": "has been received and is waiting to be reviewed",
        "es": "fue recibido y está en espera de revisión",
    },
    "status_in_progress": {"en": "is being worked on", "es": "está en proceso"},
    "status_resolved": {"en": "has been resolved", "es": "fue resuelto"},
    "status_closed": {"en": "is closed", "es": "está cerrado"},
    "status_unavailable": {
        "en": "We are sorry, we cannot look up reports right now.",
        "es": "Lo sentimos, no podemos consultar reportes en este momento.",
    },
    # 311 reports: where the problem is, the status note, texts on status changes
    "report_where": {
        "en": "Where is the problem? Please say the street address, or the two nearest cross streets. To skip this question, press 1 or say skip.",
        "es": "¿Dónde está el problema? Diga la dirección, o las dos calles que se cruzan más cerca. Para saltar esta pregunta, oprima 1 o diga saltar.",
    },
    "report_where_readback": {
        "en": "I heard: {address}. If that is right, press 1 or say yes. To say it again, press 2 or say no.",
        "es": "Escuché: {address}. Si es correcto, oprima 1 o diga sí. Para decirlo otra vez, oprima 2 o diga no.",
    },
    "report_where_not_heard": {
        "en": "Sorry, I did not hear where the problem is.",
        "es": "Lo siento, no escuché dónde está el problema.",
    },
    "report_where_missing": {
        "en": "We will use your description to find the place.",
        "es": "Usaremos su descripción para encontrar el lugar.",
    },
    "report_text_offer": {
        "en": "To get a text message when the status of your report changes, press 2.",
        "es": "Para recibir un mensaje de texto cuando cambie el estado de su reporte, oprima 2.",
    },
    "report_text_saved": {
        "en": "Thank you. We will send a text message to the number you are calling from each time the status of your report changes, between 8 a.m. and 9 p.m. Message and data rates may apply. Reply STOP to stop them.",
        "es": "Gracias. Le enviaremos un mensaje de texto al número desde el que llama cada vez que cambie el estado de su reporte, entre las 8 de la mañana y las 9 de la noche. Pueden aplicarse tarifas de mensajes y datos. Responda STOP para dejar de recibirlos.",
    },
    "status_note": {"en": "The city's note: {note}.", "es": "La nota de la ciudad: {note}."},
    "status_changed_when": {
        "en": "This was last updated {when}.",
        "es": "Esto se actualizó por última vez {when}.",
    },
    "status_text": {
        "en": "City 311: your report {reference} ({category}) {status}.",
        "es": "Ciudad 311: su reporte {reference} ({category}) {status}.",
    },
    "status_text_note": {"en": " Note: {note}", "es": " Nota: {note}"},
    "status_text_stop": {
        "en": " Reply STOP to stop these texts.",
        "es": " Responda STOP para no recibir más mensajes.",
    },
    # information
    "info_options": {
        "en": "To get this by text message, press 1. To hear it again, press 2. For the main menu, press 8. For an emergency, press 9.",
        "es": "Para recibir esto por mensaje de texto, oprima 1. Para escucharlo otra vez, oprima 2. Para el menú principal, oprima 8. Para una emergencia, oprima 9.",
    },
    "sms_queued": {
        "en": "We are sending a text message to the phone you are calling from.",
        "es": "Le estamos enviando un mensaje de texto al teléfono desde el que llama.",
    },
    "sms_no_number": {
        "en": "Sorry, we cannot send a text message to the number you are calling from.",
        "es": "Lo siento, no podemos enviar un mensaje de texto al número desde el que llama.",
    },
    "sms_failed": {
        "en": "Sorry, we could not send the text message right now.",
        "es": "Lo siento, no pudimos enviar el mensaje de texto en este momento.",
    },
    # 311 queue
    "queue_position": {
        "en": "Thank you for waiting. You are number {position} in line.",
        "es": "Gracias por esperar. Usted es el número {position} en la fila.",
    },
    "queue_offer_callback": {
        "en": "To have us call you back instead of waiting, press 1.",
        "es": "Para que le devolvamos la llamada en vez de esperar, oprima 1.",
    },
    # callbacks
    "callback_caller_id": {
        "en": "We can call you back at {digits}. To use this number, press 1. To enter a different number, press 2.",
        "es": "Podemos devolverle la llamada al {digits}. Para usar este número, oprima 1. Para marcar otro número, oprima 2.",
    },
    "callback_enter": {
        "en": "Please enter the 10 digit phone number where we can call you, starting with the area code, then press pound.",
        "es": "Marque el número de teléfono de 10 dígitos donde le podemos llamar, empezando con el código de área, y luego oprima la tecla de número.",
    },
    "callback_readback": {
        "en": "You entered {digits}. If that is right, press 1. To enter it again, press 2.",
        "es": "Usted marcó {digits}. Si es correcto, oprima 1. Para marcarlo otra vez, oprima 2.",
    },
    "callback_invalid": {
        "en": "That is not a valid phone number.",
        "es": "Ese no es un número de teléfono válido.",
    },
    "callback_premium_rate": {
        "en": "We cannot call numbers that charge a fee, such as 900 numbers.",
        "es": "No podemos llamar a números que cobran una tarifa, como los números 900.",
    },
    "callback_outside_us_canada": {
        "en": "We can only call back numbers in the United States and Canada.",
        "es": "Solo podemos devolver llamadas a números de Estados Unidos y Canadá.",
    },
    "callback_caller_id_unusable": {
        "en": "We cannot call back the number you are calling from.",
        "es": "No podemos devolver la llamada al número desde el que llama.",
    },
    "callback_consent": {
        "en": "We will call you back with an automated call from the city. Do you agree to receive this call? To agree, press 1. If you do not agree, press 2.",
        "es": "Le devolveremos la llamada con una llamada automática de la ciudad. ¿Está de acuerdo en recibir esta llamada? Para aceptar, oprima 1. Si no está de acuerdo, oprima 2.",
    },
    "callback_saved": {
        "en": "Thank you. Your call back request is saved. We will call you back by {when}.",
        "es": "Gracias. Su solicitud quedó guardada. Le llamaremos a más tardar {when}.",
    },
    "callback_declined": {
        "en": "We will not call you back. ",
        "es": "No le devolveremos la llamada. ",
    },
    "callback_not_saved": {
        "en": "We are sorry, we could not take your call back request right now.",
        "es": "Lo sentimos, no pudimos tomar su solicitud de llamada en este momento.",
    },
    "crisis_offer": {
        "en": "It sounds like you may need {name}. To be connected now, press 1 or say yes. To go back to the menu, press 2.",
        "es": "Parece que usted puede necesitar {name}. Para comunicarse ahora, oprima 1 o diga sí. Para volver al menú, oprima 2.",
    },
    "confirm_choice": {
        "en": "I think you said: {label}. If that is right, press 1 or say yes. If not, press 2.",
        "es": "Creo que usted dijo: {label}. Si es correcto, oprima 1 o diga sí. Si no, oprima 2.",
    },
    "try_again": {
        "en": "All right, let's try again.",
        "es": "Está bien, intentemos de nuevo.",
    },
    "crisis_backup_connecting": {
        "en": "{failed} did not answer. Please stay on the line. I am connecting you to {name} now.",
        "es": "{failed} no contestó. Por favor no cuelgue. Le comunico con {name} ahora.",
    },
}


def phrase(phrase_id: str, lang: str, /, **values: object) -> str:
    """The sentence `phrase_id` in `lang` (English for an unknown language), filled with `values`."""
    texts = _PHRASES[phrase_id]
    text = texts.get(lang) or texts["en"]
    return sentence(text.format(**values)) if values else text


_DOUBLE_STOP = re.compile(r"(?<!\.)\.\.(?!\.)")


def sentence(text: str) -> str:
    """A filled-in sentence as it should be spoken and read: a value ending in "p.m." does not
    double the full stop ("5 p.m.."), and a sentence opening with a value ("the nurse advice
    line did not answer") starts with a capital."""
    text = _DOUBLE_STOP.sub(".", text)
    return text[:1].upper() + text[1:]


def spoken_digits(digits: str) -> str:
    """'52055501' -> '5 2 0 5 5 5 0 1', so text-to-speech reads each digit."""
    return " ".join(ch for ch in digits if ch.isdigit())


def spoken_phone(digits: str) -> str:
    """A 10-digit North American number read in the usual groups: 520, 555, 0123."""
    if len(digits) == 10:
        return f"{spoken_digits(digits[:3])}, {spoken_digits(digits[3:6])}, {spoken_digits(digits[6:])}"
    return spoken_digits(digits)


def all_phrase_names() -> list[str]:
    return sorted(_PHRASES)


_WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": (
        "el lunes",
        "el martes",
        "el miércoles",
        "el jueves",
        "el viernes",
        "el sábado",
        "el domingo",
    ),
}


def spoken_deadline(deadline: datetime, now: datetime, zone: ZoneInfo, lang: str) -> str:
    """'5 p.m. today', 'las 5 p.m. de mañana', 'Monday at 5 p.m.' in the program's time zone."""
    local, today = deadline.astimezone(zone), now.astimezone(zone).date()
    hour = local.hour % 12 or 12
    clock = f"{hour}:{local.minute:02d}" if local.minute else f"{hour}"
    clock += " a.m." if local.hour < 12 else " p.m."
    days = (local.date() - today).days
    if lang == "es":
        if days <= 0:
            return f"hoy a las {clock}"
        if days == 1:
            return f"mañana a las {clock}"
        return f"{_WEEKDAYS['es'][local.weekday()]} a las {clock}"
    if days <= 0:
        return f"{clock} today"
    if days == 1:
        return f"{clock} tomorrow"
    return f"{_WEEKDAYS['en'][local.weekday()]} at {clock}"


_MONTHS = {
    "en": (
        "January", "February", "March", "April", "May", "June", "July", "August", "September",
        "October", "November", "December",
    ),
    "es": (
        "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
        "octubre", "noviembre", "diciembre",
    ),
}  # fmt: skip


def spoken_when(at: datetime, now: datetime, zone: ZoneInfo, lang: str) -> str:
    """When something happened, said plainly: 'today at 3:15 p.m.', 'ayer a las 9 a.m.',
    'on November 28 at 4 p.m.', in the program's time zone."""
    local, today = at.astimezone(zone), now.astimezone(zone).date()
    hour = local.hour % 12 or 12
    clock = f"{hour}:{local.minute:02d}" if local.minute else f"{hour}"
    clock += " a.m." if local.hour < 12 else " p.m."
    days = (today - local.date()).days
    if lang == "es":
        article = "a la" if hour == 1 else "a las"
        if days <= 0:
            return f"hoy {article} {clock}"
        if days == 1:
            return f"ayer {article} {clock}"
        return f"el {local.day} de {_MONTHS['es'][local.month - 1]} {article} {clock}"
    if days <= 0:
        return f"today at {clock}"
    if days == 1:
        return f"yesterday at {clock}"
    return f"on {_MONTHS['en'][local.month - 1]} {local.day} at {clock}"

"""The transfer desk, the intake line and the helper's whisper, as plain methods.

Each method takes what Twilio told us and returns the TwiML to answer with. State between
steps travels in the callback URLs, which Twilio signs: the staff ID once the PIN matched, the
answers so far ("y", "n" or "-" per question, in the tree's order), the desk round. Durable
things (sign-in failures, live calls, handoffs and their events) are written to SQL before the
call-taker hears they happened; dialing is done by RQ jobs, never inside a webhook.
"""

from __future__ import annotations

from ivr.flows.conference import ConferenceEvents
from ivr.flows.desk_state import ANSWER_CODES as ANSWER_CODES
from ivr.flows.desk_state import CALLER_CHECK_SECONDS as CALLER_CHECK_SECONDS
from ivr.flows.desk_state import CONFERENCE_EVENTS as CONFERENCE_EVENTS
from ivr.flows.desk_state import DESK as DESK
from ivr.flows.desk_state import HANDOFF as HANDOFF
from ivr.flows.desk_state import HELPER_CALL_EVENTS as HELPER_CALL_EVENTS
from ivr.flows.desk_state import INTAKE as INTAKE
from ivr.flows.desk_state import LOCKOUT_WINDOW as LOCKOUT_WINDOW
from ivr.flows.desk_state import MAX_PIN_FAILURES_PER_CALL as MAX_PIN_FAILURES_PER_CALL
from ivr.flows.desk_state import MAX_TRIES as MAX_TRIES
from ivr.flows.desk_state import QUESTION_CACHE_SIZE as QUESTION_CACHE_SIZE
from ivr.flows.desk_state import REASON_TEXT as REASON_TEXT
from ivr.flows.desk_state import WHISPER_TIMEOUT_SECONDS as WHISPER_TIMEOUT_SECONDS
from ivr.flows.desk_state import DeskState as DeskState
from ivr.flows.desk_state import _int as _int
from ivr.flows.desk_state import _per_handoff as _per_handoff
from ivr.flows.desk_state import _usable as _usable
from ivr.flows.desk_state import decode_answers as decode_answers
from ivr.flows.desk_state import encode_answers as encode_answers
from ivr.flows.desk_state import helper_label as helper_label
from ivr.flows.desk_state import parse_helper_label as parse_helper_label
from ivr.flows.desk_state import spoken_time as spoken_time
from ivr.flows.desk_state import with_article as with_article


class TransferDesk(ConferenceEvents):
    """Builds the answer to each step of the desk, the intake line and the helper's leg.

    One object, its parts in one module each: desk_tree (questions, offer, start), desk_sign_in,
    intake, helper_leg (whisper, accept/decline) and conference (status callbacks -> events).
    """

"""Callbacks owed to residents, in SQL: one name for the modules that hold them.

The record and its events are in callback_records, attempts and their claims in
callback_attempts, how an attempt ends (retry, escalate, opt-out) in callback_outcomes, and
the staff's list and actions in callback_staff. Each is re-exported here, as `store.X`.
"""

from __future__ import annotations

from ivr.store.callback_attempts import attempts_coming_due as attempts_coming_due
from ivr.store.callback_attempts import attempts_of as attempts_of
from ivr.store.callback_attempts import claim_attempt as claim_attempt
from ivr.store.callback_attempts import create_attempt as create_attempt
from ivr.store.callback_attempts import get_attempt as get_attempt
from ivr.store.callback_attempts import mark_answered as mark_answered
from ivr.store.callback_attempts import mark_bridging as mark_bridging
from ivr.store.callback_attempts import mark_connected as mark_connected
from ivr.store.callback_attempts import mark_placed as mark_placed
from ivr.store.callback_attempts import needing_attempt as needing_attempt
from ivr.store.callback_attempts import note_outcome as note_outcome
from ivr.store.callback_attempts import release_attempt as release_attempt
from ivr.store.callback_attempts import reschedule_attempt as reschedule_attempt
from ivr.store.callback_attempts import scheduled_attempts as scheduled_attempts
from ivr.store.callback_attempts import stale_attempts as stale_attempts
from ivr.store.callback_outcomes import flag_overdue as flag_overdue
from ivr.store.callback_outcomes import not_placed as not_placed
from ivr.store.callback_outcomes import opt_out as opt_out
from ivr.store.callback_outcomes import opted_out_since as opted_out_since
from ivr.store.callback_outcomes import settle_attempt as settle_attempt
from ivr.store.callback_records import FINAL as FINAL
from ivr.store.callback_records import OPEN_STATUSES as OPEN_STATUSES
from ivr.store.callback_records import Attempt as Attempt
from ivr.store.callback_records import AttemptStatus as AttemptStatus
from ivr.store.callback_records import Callback as Callback
from ivr.store.callback_records import CallbackSource as CallbackSource
from ivr.store.callback_records import CallbackStatus as CallbackStatus
from ivr.store.callback_records import attempts_made as attempts_made
from ivr.store.callback_records import confirm as confirm
from ivr.store.callback_records import create_callback as create_callback
from ivr.store.callback_records import events_of as events_of
from ivr.store.callback_records import find_by_key as find_by_key
from ivr.store.callback_records import get as get
from ivr.store.callback_records import menu_key as menu_key
from ivr.store.callback_records import record_anomaly as record_anomaly
from ivr.store.callback_records import save_draft as save_draft
from ivr.store.callback_staff import call_now as call_now
from ivr.store.callback_staff import claim as claim
from ivr.store.callback_staff import list_details as list_details
from ivr.store.callback_staff import mark_done_by_hand as mark_done_by_hand
from ivr.store.callback_staff import open_callbacks_with_age as open_callbacks_with_age

"""Every RQ job Bridgeline enqueues, by name, and the retry plans they are enqueued with.

The web and the workers both name jobs from here (this module imports nothing), so a job's
dotted name is spelled once and tests/test_architecture.py checks each one still resolves to a
function. RQ imports the function from its name when a worker runs the job.
"""

from __future__ import annotations

CALL_STEP_RETRY = (2, 5, 15)
"""A step of a call in progress (dial a helper, announce, hang up): retried within ~20 s."""

INBOX_RETRY = (1, 5, 30)
"""Applying spooled conference callbacks: soon, then the sweep takes over."""

CALL_NOW_RETRY = (5, 30, 120)
"""A callback a person asked to place now from the callbacks page."""

PUSH_SCHEDULE_RETRY = (10, 30)
"""Scheduling EIDO pushes when the database or Redis was away (sends have their own backoff)."""

DIAL_HELPER = "workers.handoffs.dial_helper"
"""Ring the next helper of a handoff (queue: urgent)."""

ANNOUNCE_CONNECTED = "workers.handoffs.announce_connected"
"""Tell the conference a helper joined."""

RETURN_TO_CALL_TAKER = "workers.handoffs.return_to_call_taker"
"""Send the desk leg back to the call-taker's desk menu."""

HANG_UP_HELPER = "workers.handoffs.hang_up_helper"
"""End a helper's leg."""

CANCEL_HELPER = "workers.handoffs.cancel_helper"
"""Stop ringing a helper whose handoff was cancelled."""

REMOVE_CALL_TAKER = "workers.handoffs.remove_call_taker"
"""Take the call-taker out of the conference when they leave the call."""

DIAL_CALL_TAKER = "workers.handoffs.dial_call_taker"
"""Ring the on-duty call-takers for the intake line."""

CHECK_CALLER_ON_LINE = "workers.handoffs.check_caller_on_line"
"""Ask Twilio whether the caller is still on the line, a few seconds into a handoff."""

END_IF_CALLER_ALONE = "workers.handoffs.end_if_caller_alone"
"""End a conference nobody but the caller is left in."""

APPLY_CONFERENCE_INBOX = "workers.handoffs.apply_conference_inbox"
"""Apply spooled conference callbacks to their handoffs."""

SCHEDULE_CALLBACK = "workers.callbacks.schedule_callback"
"""Give a callback its next attempt."""

PLACE_CALLBACK_ATTEMPT = "workers.callbacks.place_callback_attempt"
"""Place one attempt of a callback."""

SEND_SMS = "workers.sms.send_sms"
"""Send one recorded text message (queue: sms)."""

RECORD_STATUS_TEXT = "workers.report_texts.record_status_text"
"""Record the text that tells a resident their 311 report's status changed."""

PUSH_STREAM = "workers.eido_push.push_stream"
"""Send one partner's EIDO changes, in order."""

ALL_JOBS = (
    DIAL_HELPER,
    ANNOUNCE_CONNECTED,
    RETURN_TO_CALL_TAKER,
    HANG_UP_HELPER,
    CANCEL_HELPER,
    REMOVE_CALL_TAKER,
    DIAL_CALL_TAKER,
    CHECK_CALLER_ON_LINE,
    END_IF_CALLER_ALONE,
    APPLY_CONFERENCE_INBOX,
    SCHEDULE_CALLBACK,
    PLACE_CALLBACK_ATTEMPT,
    SEND_SMS,
    RECORD_STATUS_TEXT,
    PUSH_STREAM,
)
"""Every job name above (what the registry test resolves)."""

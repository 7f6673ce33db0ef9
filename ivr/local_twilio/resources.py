"""Twilio's JSON for the resources the local Twilio serves (API version 2010-04-01)."""

from __future__ import annotations

from typing import Any

from ivr.local_twilio.calls import API_VERSION, Conference, Leg, Message, Participant, rfc2822


def account_path(account_sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}"


def call(account_sid: str, leg: Leg) -> dict[str, Any]:
    base = account_path(account_sid)
    return {
        "sid": leg.sid,
        "account_sid": account_sid,
        "parent_call_sid": leg.parent_sid,
        "to": leg.to,
        "to_formatted": leg.to,
        "from": leg.from_,
        "from_formatted": leg.from_,
        "status": leg.status,
        "direction": leg.direction,
        "answered_by": leg.answered_by,
        "api_version": API_VERSION,
        "date_created": rfc2822(leg.created),
        "date_updated": rfc2822(leg.ended or leg.answered or leg.created),
        "start_time": rfc2822(leg.answered) if leg.answered else None,
        "end_time": rfc2822(leg.ended) if leg.ended else None,
        "duration": str(leg.duration()) if leg.ended else None,
        "price": None,
        "price_unit": "USD",
        "caller_name": None,
        "forwarded_from": None,
        "group_sid": None,
        "phone_number_sid": None,
        "queue_time": "0",
        "trunk_sid": None,
        "annotation": None,
        "uri": f"{base}/Calls/{leg.sid}.json",
        "subresource_uris": {
            "recordings": f"{base}/Calls/{leg.sid}/Recordings.json",
            "notifications": f"{base}/Calls/{leg.sid}/Notifications.json",
        },
    }


def conference(account_sid: str, room: Conference) -> dict[str, Any]:
    base = account_path(account_sid)
    return {
        "sid": room.sid,
        "account_sid": account_sid,
        "friendly_name": room.name,
        "status": room.status,
        "region": "us1",
        "api_version": API_VERSION,
        "date_created": rfc2822(room.created),
        "date_updated": rfc2822(room.updated),
        "reason_conference_ended": room.reason_ended,
        "call_sid_ending_conference": room.call_sid_ending,
        "uri": f"{base}/Conferences/{room.sid}.json",
        "subresource_uris": {
            "participants": f"{base}/Conferences/{room.sid}/Participants.json",
            "recordings": f"{base}/Conferences/{room.sid}/Recordings.json",
        },
    }


def participant(account_sid: str, room: Conference, person: Participant) -> dict[str, Any]:
    base = account_path(account_sid)
    return {
        "account_sid": account_sid,
        "call_sid": person.call_sid,
        "conference_sid": room.sid,
        "label": person.label,
        "status": person.status,
        "muted": person.muted,
        "hold": person.hold,
        "coaching": False,
        "call_sid_to_coach": None,
        "start_conference_on_enter": person.start_on_enter,
        "end_conference_on_exit": person.end_on_exit,
        "date_created": rfc2822(person.created),
        "date_updated": rfc2822(person.created),
        "uri": f"{base}/Conferences/{room.sid}/Participants/{person.call_sid}.json",
    }


def message(account_sid: str, text: Message) -> dict[str, Any]:
    base = account_path(account_sid)
    return {
        "sid": text.sid,
        "account_sid": account_sid,
        "to": text.to,
        "from": text.from_,
        "body": text.body,
        "status": text.status,
        "direction": "outbound-api",
        "num_segments": "1",
        "num_media": "0",
        "api_version": API_VERSION,
        "date_created": rfc2822(text.created),
        "date_updated": rfc2822(text.created),
        "date_sent": None,
        "error_code": None,
        "error_message": None,
        "price": None,
        "price_unit": "USD",
        "messaging_service_sid": None,
        "uri": f"{base}/Messages/{text.sid}.json",
        "subresource_uris": {"media": f"{base}/Messages/{text.sid}/Media.json"},
    }


def page(key: str, items: list[dict[str, Any]], uri: str, page_size: int) -> dict[str, Any]:
    """One page of a list (everything fits on the first page here)."""
    shown = items[:page_size]
    return {
        key: shown,
        "first_page_uri": uri,
        "next_page_uri": None,
        "previous_page_uri": None,
        "page": 0,
        "page_size": page_size,
        "start": 0,
        "end": max(0, len(shown) - 1),
        "uri": uri,
    }


def error(status: int, code: int, message_text: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message_text,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }

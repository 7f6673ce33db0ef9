"""Twilio's REST API (2010-04-01) and the control API of the local Twilio, as one WSGI app.

REST, with HTTP Basic auth (account SID, auth token), answered in Twilio's JSON:
  Calls.json                      POST create (Url or Twiml, StatusCallback, StatusCallbackEvent,
                                  Timeout, MachineDetection), GET list (To, From, Status)
  Calls/{CallSid}.json            GET fetch, POST update (Url, Twiml, Status)
  Conferences.json                GET list (FriendlyName, Status)
  Conferences/{Sid}.json          GET fetch, POST update (Status=completed, AnnounceUrl)
  Conferences/{Sid}/Participants.json              GET list, POST create (Label, ...)
  Conferences/{Sid}/Participants/{CallSid|Label}.json  GET, POST (AnnounceUrl, Hold, Muted), DELETE
  Messages.json, Messages/{Sid}.json               POST send (recorded, shown), GET

Control, for whoever plays the people (no auth; it listens on loopback only):
  POST /_local/calls              an inbound call: To, From, Url
  GET  /_local/calls[/{sid}]      each call as its person knows it (status, what they heard)
  POST /_local/calls/{sid}/{act}  press (digits), speak (words), silence, record (seconds),
                                  wait, answer (as=human|machine), busy, failed, hangup
  POST /_local/phones             how a phone behaves when it rings: Address, Mode, After
  GET  /_local/conferences, /_local/messages, /_local/problems, /_local/rest-log
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from ivr.local_twilio import resources
from ivr.local_twilio.calls import DEFAULT_CALL_TIMEOUT, Leg, Message, RestError, sid
from ivr.local_twilio.switch import Switch

log = logging.getLogger(__name__)

SID = r"[A-Za-z0-9_\-.+:@%]+"

RULES = Map(
    [
        Rule("/2010-04-01/Accounts/<account>/Calls.json", endpoint="calls"),
        Rule("/2010-04-01/Accounts/<account>/Calls/<call_sid>.json", endpoint="call"),
        Rule("/2010-04-01/Accounts/<account>/Conferences.json", endpoint="conferences"),
        Rule("/2010-04-01/Accounts/<account>/Conferences/<ref>.json", endpoint="conference"),
        Rule(
            "/2010-04-01/Accounts/<account>/Conferences/<ref>/Participants.json",
            endpoint="participants",
        ),
        Rule(
            "/2010-04-01/Accounts/<account>/Conferences/<ref>/Participants/<who>.json",
            endpoint="participant",
        ),
        Rule("/2010-04-01/Accounts/<account>/Messages.json", endpoint="messages"),
        Rule("/2010-04-01/Accounts/<account>/Messages/<message_sid>.json", endpoint="message"),
        Rule("/_local/health", endpoint="health"),
        Rule("/_local/calls", endpoint="local_calls"),
        Rule("/_local/calls/<call_sid>", endpoint="local_call"),
        Rule("/_local/calls/<call_sid>/<action>", endpoint="local_act"),
        Rule("/_local/phones", endpoint="local_phones"),
        Rule("/_local/conferences", endpoint="local_conferences"),
        Rule("/_local/messages", endpoint="local_messages"),
        Rule("/_local/problems", endpoint="local_problems"),
        Rule("/_local/rest-log", endpoint="local_rest_log"),
    ]
)

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _error(status: int, code: int, text: str) -> Response:
    return _json(resources.error(status, code, text), status)


def _form(request: Request) -> dict[str, str]:
    """Single-valued fields; repeated ones (StatusCallbackEvent) joined with spaces."""
    out: dict[str, str] = {}
    for key in request.form:
        values = request.form.getlist(key)
        out[key] = " ".join(values) if len(values) > 1 else values[0]
    return out


def _address_ok(value: str) -> bool:
    return bool(E164.match(value)) or value.startswith(("sip:", "client:"))


def leg_view(switch: Switch, leg: Leg) -> dict[str, Any]:
    """A call as its person knows it."""
    conference = switch.conferences.get(leg.conference_sid or "")
    label = None
    if conference is not None and leg.sid in conference.participants:
        label = conference.participants[leg.sid].label
    return {
        "sid": leg.sid,
        "to": leg.to,
        "from": leg.from_,
        "direction": leg.direction,
        "status": leg.status,
        "answered_by": leg.answered_by,
        "waiting_for": leg.call.waiting_for if leg.call is not None and leg.active else None,
        "heard": leg.heard(),
        "conference": conference.name if conference is not None else None,
        "label": label,
        "parent_call_sid": leg.parent_sid,
        "bridged_with": leg.bridged,
        "url": leg.url,
        "created": leg.created.timestamp(),
    }


class LocalTwilio:
    """The WSGI app: Twilio's REST API for one account, and the control API."""

    def __init__(self, switch: Switch, auth_token: str) -> None:
        self.switch = switch
        self.auth_token = auth_token

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = RULES.bind_to_environ(request.environ)
        try:
            endpoint, matched = adapter.match()
        except HTTPException:
            return _error(404, 20404, "The requested resource was not found")
        args = dict(matched)
        try:
            if endpoint.startswith("local_") or endpoint == "health":
                handler = getattr(self, endpoint)
                return handler(request, **args)  # type: ignore[no-any-return]
            account = args.pop("account")
            refused = self._authenticate(request, account)
            if refused is not None:
                return refused
            form = _form(request)
            path = request.path.split(f"/Accounts/{account}", 1)[1]
            with self.switch.lock:
                self.switch.record_rest(request.method, path, form)
                handler = getattr(self, endpoint)
                return handler(request, form, **args)  # type: ignore[no-any-return]
        except RestError as exc:
            return _error(exc.status, exc.code, exc.message)

    def _authenticate(self, request: Request, account: str) -> Response | None:
        header = request.headers.get("Authorization", "")
        user, password = "", ""
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                pass
        if user != self.switch.account_sid or not hmac.compare_digest(
            password.encode(), self.auth_token.encode()
        ):
            return _error(401, 20003, "Authenticate")
        if account != self.switch.account_sid:
            return _error(404, 20404, "The requested resource was not found")
        return None

    # ------------------------------------------------------------------ Calls

    def calls(self, request: Request, form: dict[str, str]) -> Response:
        switch = self.switch
        account = switch.account_sid
        if request.method == "GET":
            wanted = request.args
            found = [
                leg
                for leg in reversed(list(switch.calls.values()))
                if (not wanted.get("To") or leg.to == wanted["To"])
                and (not wanted.get("From") or leg.from_ == wanted["From"])
                and (not wanted.get("Status") or leg.status == wanted["Status"])
            ]
            size = int(wanted.get("PageSize", "50") or 50)
            items = [resources.call(account, leg) for leg in found]
            return _json(resources.page("calls", items, request.full_path, size))
        if request.method != "POST":
            return _error(405, 20004, "Method not allowed")
        to, from_ = form.get("To", ""), form.get("From", "")
        if not to:
            raise RestError(400, 21201, "No 'To' number is specified")
        if not from_:
            raise RestError(400, 21213, "No 'From' number is specified")
        if not _address_ok(to):
            raise RestError(400, 21211, f"Invalid 'To' Phone Number: {to[:3]}...")
        if not E164.match(from_):
            raise RestError(400, 21212, "Invalid 'From' Phone Number")
        if not form.get("Url") and not form.get("Twiml"):
            raise RestError(400, 21205, "Url parameter is required.")
        raw_timeout = form.get("Timeout", "")
        leg = Leg(
            sid=sid("CA"),
            to=to,
            from_=from_,
            direction="outbound-api",
            url=form.get("Url") or None,
            twiml=form.get("Twiml") or None,
            status_callback=form.get("StatusCallback") or None,
            status_callback_method=form.get("StatusCallbackMethod", "POST"),
            events=frozenset((form.get("StatusCallbackEvent") or "completed").split()),
            timeout=int(raw_timeout) if raw_timeout.isdigit() else DEFAULT_CALL_TIMEOUT,
            machine_detection=form.get("MachineDetection") or None,
        )
        if form.get("Method", "POST").upper() != "POST":
            switch.report("a call's Url is fetched with GET: Bridgeline's webhooks take POST")
        switch.place(leg)
        return _json(resources.call(account, leg), 201)

    def call(self, request: Request, form: dict[str, str], call_sid: str) -> Response:
        switch = self.switch
        leg = switch.calls.get(call_sid)
        if leg is None:
            return _error(
                404, 20404, f"The requested resource /Calls/{call_sid}.json was not found"
            )
        if request.method == "POST":
            status = form.get("Status")
            if form.get("Url") or form.get("Twiml"):
                switch.redirect(leg, form.get("Url"), form.get("Twiml"))
            elif status in ("completed", "canceled"):
                if leg.active:
                    switch.hang_up(leg, status)
            elif status:
                raise RestError(400, 21218, f"Invalid Status: {status}")
        return _json(resources.call(switch.account_sid, leg))

    # ------------------------------------------------------------------ Conferences

    def conferences(self, request: Request, form: dict[str, str]) -> Response:
        switch = self.switch
        wanted = request.args
        found = [
            room
            for room in reversed(list(switch.conferences.values()))
            if (not wanted.get("FriendlyName") or room.name == wanted["FriendlyName"])
            and (not wanted.get("Status") or room.status == wanted["Status"])
        ]
        items = [resources.conference(switch.account_sid, room) for room in found]
        size = int(wanted.get("PageSize", "50") or 50)
        return _json(resources.page("conferences", items, request.full_path, size))

    def _room(self, ref: str) -> Any:
        room = self.switch.conference(ref)
        if room is None:
            raise RestError(
                404, 20404, f"The requested resource /Conferences/{ref}.json was not found"
            )
        return room

    def conference(self, request: Request, form: dict[str, str], ref: str) -> Response:
        switch = self.switch
        room = self._room(ref)
        if request.method == "POST":
            if form.get("Status") == "completed":
                if room.status != "completed":
                    switch.end_conference(room)
            elif form.get("Status"):
                raise RestError(400, 21218, "Status may only be completed")
            if form.get("AnnounceUrl"):
                for call_sid in list(room.participants):
                    switch.announce(switch.calls[call_sid], room, form["AnnounceUrl"])
        return _json(resources.conference(switch.account_sid, room))

    def participants(self, request: Request, form: dict[str, str], ref: str) -> Response:
        switch = self.switch
        if request.method == "GET":
            room = self._room(ref)
            items = [
                resources.participant(switch.account_sid, room, person)
                for person in room.participants.values()
            ]
            size = int(request.args.get("PageSize", "50") or 50)
            return _json(resources.page("participants", items, request.full_path, size))
        # Twilio takes a conference's friendly name here, and starts the conference if need be.
        room = switch.conference(ref, create=not ref.startswith("CF"))
        if room is None or room.status == "completed":
            raise RestError(
                404, 20404, f"The requested resource /Conferences/{ref}.json was not found"
            )
        to, from_ = form.get("To", ""), form.get("From", "")
        if not to or not _address_ok(to):
            raise RestError(400, 21211, "Invalid 'To' Phone Number")
        if not from_:
            raise RestError(400, 21213, "No 'From' number is specified")
        raw_timeout = form.get("Timeout", "")
        leg = Leg(
            sid=sid("CA"),
            to=to,
            from_=from_,
            direction="outbound-api",
            status_callback=form.get("StatusCallback") or None,
            status_callback_method=form.get("StatusCallbackMethod", "POST"),
            events=frozenset((form.get("StatusCallbackEvent") or "completed").split()),
            timeout=int(raw_timeout) if raw_timeout.isdigit() else DEFAULT_CALL_TIMEOUT,
        )
        person = switch.add_participant(room, form, leg)
        return _json(resources.participant(switch.account_sid, room, person), 201)

    def participant(self, request: Request, form: dict[str, str], ref: str, who: str) -> Response:
        switch = self.switch
        room = self._room(ref)
        person = switch.participant(room, who)
        if person is None:
            raise RestError(
                404, 20404, f"The requested resource /Participants/{who}.json was not found"
            )
        leg = switch.calls[person.call_sid]
        if request.method == "DELETE":
            if person.call_sid in room.connecting:
                switch.hang_up(leg, "canceled")
            else:
                switch.remove(leg)
            return Response(status=204)
        if request.method == "POST":
            if form.get("AnnounceUrl"):
                switch.announce(leg, room, form["AnnounceUrl"])
            if "Hold" in form:
                hold = form["Hold"].lower() == "true"
                if hold != person.hold:
                    person.hold = hold
                    leg.note("[put on hold]" if hold else "[taken off hold]")
                    switch._event(
                        room, "participant-hold" if hold else "participant-unhold", person
                    )
            if "Muted" in form:
                muted = form["Muted"].lower() == "true"
                if muted != person.muted:
                    person.muted = muted
                    switch._event(
                        room, "participant-mute" if muted else "participant-unmute", person
                    )
        return _json(resources.participant(switch.account_sid, room, person))

    # ------------------------------------------------------------------ Messages

    def messages(self, request: Request, form: dict[str, str]) -> Response:
        switch = self.switch
        if request.method == "GET":
            items = [resources.message(switch.account_sid, m) for m in reversed(switch.messages)]
            return _json(resources.page("messages", items, request.full_path, 50))
        to, from_, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        if not to or not E164.match(to):
            raise RestError(400, 21211, "Invalid 'To' Phone Number")
        if not from_:
            raise RestError(400, 21603, "A 'From' phone number is required.")
        if not body:
            raise RestError(400, 21602, "Message body is required.")
        text = Message(sid=sid("SM"), to=to, from_=from_, body=body)
        switch.messages.append(text)
        log.info("local twilio: text %s queued (%s characters)", text.sid, len(body))
        callback = form.get("StatusCallback")
        if callback:
            for status in ("sent", "delivered"):
                switch.webhooks.send_later(
                    callback,
                    {
                        "AccountSid": switch.account_sid,
                        "MessageSid": text.sid,
                        "SmsSid": text.sid,
                        "MessageStatus": status,
                        "SmsStatus": status,
                        "From": from_,
                        "To": to,
                        "ApiVersion": "2010-04-01",
                    },
                )
        text.status = "delivered" if callback else "sent"
        return _json(resources.message(switch.account_sid, text), 201)

    def message(self, request: Request, form: dict[str, str], message_sid: str) -> Response:
        for text in self.switch.messages:
            if text.sid == message_sid:
                return _json(resources.message(self.switch.account_sid, text))
        return _error(404, 20404, "The requested resource was not found")

    # ------------------------------------------------------------------ control

    def health(self, request: Request) -> Response:
        return _json({"ok": True, "account_sid": self.switch.account_sid})

    def local_calls(self, request: Request) -> Response:
        switch = self.switch
        if request.method == "POST":
            form = _form(request)
            url = form.get("Url", "")
            if not url.startswith("http"):
                url = switch.webhooks.public_base + "/" + url.lstrip("/")
            with switch.lock:
                leg = switch.inbound(form.get("To", "+15205550100"), form.get("From", ""), url)
                return _json(leg_view(switch, leg), 201)
        with switch.lock:
            return _json([leg_view(switch, leg) for leg in switch.calls.values()])

    def local_call(self, request: Request, call_sid: str) -> Response:
        with self.switch.lock:
            leg = self.switch.calls.get(call_sid)
            if leg is None:
                return _error(404, 20404, "no such call")
            return _json(leg_view(self.switch, leg))

    def local_act(self, request: Request, call_sid: str, action: str) -> Response:
        switch = self.switch
        form = _form(request)
        with switch.lock:
            leg = switch.calls.get(call_sid)
            if leg is None:
                return _error(404, 20404, "no such call")
            switch.act(leg, action, form)
            return _json(leg_view(switch, leg))

    def local_phones(self, request: Request) -> Response:
        switch = self.switch
        form = _form(request)
        with switch.lock:
            if request.method == "POST":
                switch.set_phone(form.get("Address", ""), form.get("Mode", "manual"),
                                 float(form.get("After", "0.2")))  # fmt: skip
            return _json({a: {"mode": p.mode, "after": p.after} for a, p in switch.phones.items()})

    def local_conferences(self, request: Request) -> Response:
        switch = self.switch
        with switch.lock:
            return _json(
                [
                    {
                        "sid": room.sid,
                        "name": room.name,
                        "status": room.status,
                        "participants": [
                            {"call_sid": p.call_sid, "label": p.label, "hold": p.hold}
                            for p in room.participants.values()
                        ],
                        "events": room.log,
                    }
                    for room in switch.conferences.values()
                ]
            )

    def local_messages(self, request: Request) -> Response:
        with self.switch.lock:
            return _json(
                [resources.message(self.switch.account_sid, m) for m in self.switch.messages]
            )

    def local_problems(self, request: Request) -> Response:
        with self.switch.lock:
            return _json(list(self.switch.problems))

    def local_rest_log(self, request: Request) -> Response:
        since = float(request.args.get("since", "0") or 0)
        with self.switch.lock:
            return _json(
                [
                    {"at": at, "method": method, "path": path, "form": form}
                    for at, method, path, form in self.switch.rest_log
                    if at >= since
                ]
            )

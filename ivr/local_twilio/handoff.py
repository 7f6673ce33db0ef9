"""`bridgeline-simulate handoff`: every party of a warm handoff, played against a running
service and its real workers through the local Twilio, each party's view printed.

    bridgeline-simulate handoff --url http://127.0.0.1:5000            # one whole handoff
    bridgeline-simulate handoff --scenario decline                      # first helper says no
    bridgeline-simulate handoff --scenario caller-drops-while-ringing
    bridgeline-simulate handoff --scenario caller-drops-at-announcement
    bridgeline-simulate handoff --scenario callback-person              # a resident's callback
    bridgeline-simulate handoff --scenario callback-machine             # ... reaches voicemail
    bridgeline-simulate handoff --scenario nobody-on-duty   # expects the desk to say so

The call-taker signs in at the transfer desk (a demo account is created when it does not
exist), answers the tree for a calm caller who agrees, picks the first helper offered and the
reason (mental health) and gives a callback number. The helper's phone rings at the local
Twilio; the simulator answers it and presses 1 (or 2). Bridgeline's workers do the rest: dial, announce, hang up, record. The last
line is the handoff's (or callback's) status from the database; exit 0 only when it is what
the scenario expects ("handoff completed" for the default one). A scenario the service rightly
will not play at this hour (a callback in quiet hours or with nobody of its type on duty; no
one on duty when the roster has someone around the clock) says why and exits 3.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa

from ivr.local_twilio.client import ControlError, LocalTwilioClient, View
from ivr.local_twilio.off_hours import NOT_PLAYABLE, NotPlayableNow, callback_put_off, offered

SCENARIOS = (
    "accept",
    "decline",
    "caller-drops-while-ringing",
    "caller-drops-at-announcement",
    "callback-person",
    "callback-machine",
    "nobody-on-duty",
)

DEMO_STAFF_ID = "7000"
DEMO_PIN = "2580"
DEMO_NAME = "Demo Call-Taker"

PSAP_LINE = "+15205550199"
"""The line the demo call-taker calls the desk from."""

CALLER_NUMBER = "5205550123"
"""The caller's callback number the call-taker types in (ten digits)."""

RESIDENT = "+15205550177"
"""The resident who asks for a callback in the callback scenarios."""

REASON = "mental health"
"""What the call is about, as the call-taker picks it at the desk (decision_tree.yaml)."""

NOBODY_ON_DUTY = "No eligible helper is on duty now"
"""What the desk says when no helper type the tree allows has anyone on duty."""

QUIET_SECONDS = 3.0
"""How long the simulator watches for calls that should not happen after a handoff ended."""

WAIT_SECONDS = 60.0
"""How long any one step may take before the scenario gives up."""


class ScenarioFailed(RuntimeError):
    """The service did not do what the scenario expects; the message says what happened."""


@dataclass
class Party:
    """One person on the phone and how much of what they heard was printed."""

    name: str
    sid: str
    out: TextIO
    shown: int = 0

    def show(self, view: View) -> View:
        for line in view["heard"][self.shown :]:
            if line:
                print(f"  {self.name:<14}| {line}", file=self.out)
        self.shown = len(view["heard"])
        return view


@dataclass
class Simulation:
    twilio: LocalTwilioClient
    engine: sa.Engine
    out: TextIO
    staff_id: str
    pin: str
    timeout: float = WAIT_SECONDS
    parties: dict[str, Party] = field(default_factory=dict)
    earlier: set[str] = field(default_factory=set)
    """Calls the local Twilio had before this run (a running service keeps them)."""

    def __post_init__(self) -> None:
        self.earlier = {view["sid"] for view in self.twilio.calls()}

    def say(self, text: str) -> None:
        print(text, file=self.out)

    def party(self, name: str, view: View) -> Party:
        party = Party(name, view["sid"], self.out)
        self.parties[view["sid"]] = party
        party.show(view)
        return party

    def refresh(self, party: Party) -> View:
        return party.show(self.twilio.call(party.sid))

    def act(self, party: Party, action: str, **fields: Any) -> View:
        return party.show(self.twilio.act(party.sid, action, **fields))

    def wait(self, what: str, check: Callable[[], Any]) -> Any:
        try:
            return self.twilio.wait_for(what, check, timeout=self.timeout)
        except TimeoutError as exc:
            raise ScenarioFailed(str(exc)) from None

    def wait_view(self, party: Party, what: str, check: Callable[[View], bool]) -> View:
        def ready() -> View | None:
            view = self.twilio.call(party.sid)
            return view if check(view) else None

        return party.show(self.wait(what, ready))

    # ------------------------------------------------------------------ the desk

    def desk_call(
        self, helper_label: str | None = None, reason: str = REASON, nobody_expected: bool = False
    ) -> Party:
        """Sign in, answer the tree for a calm caller who agrees, choose a helper and what the
        call is about (decision_tree.yaml handoff_reasons), give the number.

        `nobody_expected`: a helper offered ends the call without a transfer (key 0) instead."""
        self.say("The call-taker calls the transfer desk from the PSAP line.")
        desk = self.party(
            "call-taker", self.twilio.dial_in(url="/voice/transfer-desk", from_=PSAP_LINE)
        )
        self.act(desk, "press", digits=f"{self.staff_id}#")
        view = self.act(desk, "press", digits=f"{self.pin}#")
        for _ in range(20):
            if view["waiting_for"] != "Gather":
                if any(NOBODY_ON_DUTY in line for line in view["heard"]):
                    return desk
                raise ScenarioFailed(f"the desk stopped asking: {view['heard'][-1:]}")
            prompt = view["heard"][-1] if view["heard"] else ""
            if "Press 1 for yes, 2 for no" in prompt:
                # A calm caller who agrees to talk with a helper: yes only to consent.
                view = self.act(desk, "press", digits="1" if "agree" in prompt else "2")
                continue
            if "What is the call about?" in prompt:
                key = _offer_key(prompt, reason)
                print(f"  {desk.name:<14}| [picks the reason: {reason}]", file=self.out)
                view = self.act(desk, "press", digits=key)
                continue
            if "To end without a transfer, press 0" in prompt and nobody_expected:
                self.say("A helper is offered, so the call-taker presses 0 (no transfer).")
                self.act(desk, "press", digits="0")
                names = ", ".join(offered(prompt))
                raise NotPlayableNow(
                    f"someone is on duty now, so the desk offered {names}; it says "
                    f"'{NOBODY_ON_DUTY}' only when no helper type the tree allows (for this "
                    "caller) has anyone on duty in the service's roster (config/roster.yaml; "
                    "a type on duty 'always', such as 988, means never)"
                )
            if "To end without a transfer, press 0" in prompt:
                key = _offer_key(prompt, helper_label)
                view = self.act(desk, "press", digits=key)
                continue
            if "callback number" in prompt:
                view = self.act(desk, "press", digits=f"{CALLER_NUMBER}#")
                break
            raise ScenarioFailed(f"the desk asked something the simulator does not know: {prompt}")
        if view["waiting_for"] != "Dial" or view["conference"] is None:
            raise ScenarioFailed("the call-taker and caller were not put in the conference")
        return desk

    def run_nobody_on_duty(self) -> str:
        desk = self.desk_call(nobody_expected=True)
        if not any(NOBODY_ON_DUTY in line for line in self.refresh(desk)["heard"]):
            raise ScenarioFailed("a helper was offered: someone is on duty now")
        return self.wait_status(desk, {"not_started"})

    def handoff_id(self, desk: Party) -> int:
        """The handoff the desk call started (read from the database)."""
        from ivr.flows import handoffs

        def started() -> int | None:
            live = handoffs.live_call_by_sid(self.engine, desk.sid)
            found = handoffs.handoffs_for_call(self.engine, live.id) if live else []
            return found[-1].id if found else None

        return int(self.wait("the handoff to be recorded", started))

    def helper_rings(self, seen: set[str], desk: Party | None = None) -> Party:
        """The next helper's phone ringing for a warm handoff (a whisper call): for the
        handoff `desk` started, when given (a busy service has others)."""
        mine = (
            f"/voice/handoff/whisper?h={self.handoff_id(desk)}&"
            if desk
            else "/voice/handoff/whisper"
        )

        def ringing() -> View | None:
            for view in self.twilio.calls():
                whisper = mine in (view["url"] or "")
                fresh = view["sid"] not in seen and view["sid"] not in self.earlier
                if whisper and fresh and view["status"] == "ringing":
                    return view
            return None

        view = self.wait("a helper's phone to ring", ringing)
        seen.add(view["sid"])
        return self.party(f"helper {len(seen)}", view)

    def status(self, desk: Party) -> str:
        from ivr.flows import handoffs

        live = handoffs.live_call_by_sid(self.engine, desk.sid)
        if live is None:
            return "no handoff recorded"
        found = handoffs.handoffs_for_call(self.engine, live.id)
        return found[-1].status.value if found else "no handoff recorded"

    def wait_status(self, desk: Party, wanted: set[str]) -> str:
        return str(self.wait(f"the handoff to be {' or '.join(sorted(wanted))}",
                             lambda: (s := self.status(desk)) in wanted and s))  # fmt: skip

    def final_status(self, desk: Party) -> str:
        from ivr.flows import handoffs

        terminal = {s.value for s in handoffs.TERMINAL}
        return str(
            self.wait("the handoff to end", lambda: (s := self.status(desk)) in terminal and s)
        )

    def accept(self, helper: Party) -> View:
        self.act(helper, "answer")
        self.wait_view(helper, "the whisper", lambda v: v["waiting_for"] == "Gather")
        self.say("The helper hears the whisper and presses 1.")
        view = self.act(helper, "press", digits="1")
        if view["conference"] is None:
            raise ScenarioFailed("the helper was not put in the caller's conference")
        return view

    # ------------------------------------------------------------------ scenarios

    def run_accept(self) -> str:
        desk = self.desk_call()
        helper = self.helper_rings(set(), desk)
        self.accept(helper)
        self.wait_view(desk, "the call-taker to hear that the helper is on",
                       lambda v: any("you may hang up now" in line for line in v["heard"]))  # fmt: skip
        self.say("The call-taker hangs up their side of the PSAP bridge; the caller stays on.")
        desk.name = "caller"
        self.talking(desk, helper)
        self.say("The caller says goodbye and hangs up.")
        self.act(desk, "hangup")
        self.wait_view(helper, "the helper's call to end", lambda v: v["status"] != "in-progress")
        return self.final_status(desk)

    def talking(self, desk: Party, helper: Party) -> None:
        for room in self.twilio.conferences():
            if room["status"] == "in-progress" and any(
                p["call_sid"] == desk.sid for p in room["participants"]
            ):
                labels = [p["label"] for p in room["participants"]]
                self.say(
                    f"The caller and the helper talk (in the conference: {', '.join(labels)})."
                )
                return
        raise ScenarioFailed("the caller and the helper are not in one conference")

    def run_decline(self) -> str:
        desk = self.desk_call()
        seen: set[str] = set()
        helper = self.helper_rings(seen, desk)
        self.act(helper, "answer")
        self.wait_view(helper, "the whisper", lambda v: v["waiting_for"] == "Gather")
        self.say("The first helper hears the whisper and presses 2 (declines).")
        self.act(helper, "press", digits="2")

        mine = f"/voice/handoff/whisper?h={self.handoff_id(desk)}&"

        def next_step() -> str | None:
            for view in self.twilio.calls():
                whisper = mine in (view["url"] or "")
                fresh = view["sid"] not in seen and view["sid"] not in self.earlier
                if whisper and fresh and view["status"] == "ringing":
                    return "next"
            desk_view = self.twilio.call(desk.sid)
            if any("No helper took the call" in line for line in desk_view["heard"]):
                return "returned"
            return None

        step = self.wait("the next helper to ring, or the call to come back to the desk", next_step)
        if step == "returned":
            self.refresh(desk)
            self.say("Nobody else is on the chain: the call is back with the call-taker.")
            status = self.wait_status(desk, {"returned"})
            self.act(desk, "hangup")
            return status
        self.say("The next helper in the chain rings.")
        second = self.helper_rings(seen, desk)
        self.accept(second)
        self.wait_view(desk, "the call-taker to hear that the helper is on",
                       lambda v: any("you may hang up now" in line for line in v["heard"]))  # fmt: skip
        desk.name = "caller"
        self.talking(desk, second)
        self.act(desk, "hangup")
        return self.final_status(desk)

    def run_caller_drops_while_ringing(self) -> str:
        desk = self.desk_call()
        helper = self.helper_rings(set(), desk)
        self.say("The caller hangs up while the helper's phone is still ringing.")
        self.act(desk, "hangup")
        view = self.wait_view(helper, "the helper's phone to stop ringing",
                              lambda v: v["status"] != "ringing")  # fmt: skip
        self.say(f"The helper's phone: {view['status']}.")
        return self.final_status(desk)

    def run_caller_drops_at_announcement(self) -> str:
        desk = self.desk_call()
        helper = self.helper_rings(set(), desk)
        self.accept(helper)
        self.say("The caller hangs up just as the helper joins (the desk's announcement is due).")
        self.act(desk, "hangup")
        view = self.wait_view(
            helper, "the helper's call to end", lambda v: v["status"] != "in-progress"
        )
        self.say(f"The helper's call: {view['status']}.")
        status = self.final_status(desk)
        self.no_more_dials(helper, QUIET_SECONDS)
        return status

    def no_more_dials(self, helper: Party, seconds: float) -> None:
        """Nobody else may be rung for this handoff once it ended (watched for `seconds`)."""
        first = self.twilio.call(helper.sid)["url"] or ""
        handoff = first.split("h=", 1)[1].split("&", 1)[0] if "h=" in first else ""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for view in self.twilio.calls():
                url = view["url"] or ""
                if view["sid"] != helper.sid and f"/voice/handoff/whisper?h={handoff}&" in url:
                    self.party("another helper", view)
                    raise ScenarioFailed(
                        f"after the handoff ended, another helper was dialed for it ({view['to']})"
                    )
            time.sleep(0.1)

    # ------------------------------------------------------------------ callbacks

    def ask_for_callback(self) -> Party:
        self.say("A resident calls the self-service line and asks to be called back.")
        resident = self.party(
            "resident", self.twilio.dial_in(url="/voice/self-service", from_=RESIDENT)
        )
        for key in ("1", "5", "1", "1"):  # English, a call back, at this number, I agree
            view = self.act(resident, "press", digits=key)
            if view["waiting_for"] is None:
                break
        if not any(
            "call back request is saved" in line for line in self.refresh(resident)["heard"]
        ):
            raise ScenarioFailed("the resident's callback request was not saved")
        self.act(resident, "hangup") if self.twilio.call(resident.sid)[
            "status"
        ] == "in-progress" else None
        return resident

    def callback_call(self, resident: Party) -> Party:
        self.say("Waiting for the callback to come due and be placed by the workers...")

        def placed() -> tuple[str, Any] | None:
            for view in self.twilio.calls():
                if view["sid"] in self.earlier:
                    continue  # a call of an earlier run of the simulator
                if view["to"] == RESIDENT and "/voice/callback/answered" in (view["url"] or ""):
                    return ("placed", view)
            waits = self.callback_waits(resident)
            return ("waits", waits) if waits else None

        kind, found = self.wait("the callback to be placed", placed)
        if kind == "waits":
            raise NotPlayableNow(found)
        return self.party("resident (cb)", found)

    def callback_waits(self, resident: Party) -> str | None:
        """Why the service put the resident's callback off instead of placing it now (its
        quiet hours, or no helper of the callback's type on duty), or None."""
        return callback_put_off(self.engine, resident.sid, self.staff_id)

    def callback_outcome(self, call: Party) -> str:
        """The outcome of the callback attempt placed as `call`, once that attempt ended."""
        from ivr.store import callbacks as store
        from ivr.store.tables import callbacks as table

        with self.engine.connect() as conn:
            ids = conn.execute(sa.select(table.c.id).where(table.c.phone_number == RESIDENT))
            callback_ids = list(ids.scalars())
        for callback_id in callback_ids:
            for attempt in store.attempts_of(self.engine, callback_id):
                if attempt.call_sid == call.sid and attempt.status.value in store.FINAL:
                    return attempt.outcome or attempt.status.value
        return ""

    def run_callback_machine(self) -> str:
        self.twilio.set_phone(RESIDENT, "machine", after=0.3)
        resident = self.ask_for_callback()
        call = self.callback_call(resident)
        self.wait_view(call, "the voicemail message to end", lambda v: v["status"] != "in-progress"
                       and v["status"] != "ringing" and v["status"] != "queued")  # fmt: skip
        return str(self.wait("the attempt to be recorded", lambda: self.callback_outcome(call)))

    def run_callback_person(self) -> str:
        self.twilio.set_phone(RESIDENT, "manual")
        resident = self.ask_for_callback()
        return self.run_callback_person_after_request(resident)

    def run_callback_person_after_request(self, resident: Party) -> str:
        """The callback rings; the resident answers, presses 1 and talks with a helper."""
        call = self.callback_call(resident)
        self.act(call, "answer")
        view = self.wait_view(
            call, "the callback's greeting", lambda v: v["waiting_for"] == "Gather"
        )
        self.say("The resident presses 1 to talk with someone now.")
        view = self.act(call, "press", digits="1")
        if view["waiting_for"] == "Dial":

            def helper_ringing() -> View | None:
                for v in self.twilio.calls():
                    if v["parent_call_sid"] == call.sid and v["status"] == "ringing":
                        return v
                return None

            helper = self.party("helper", self.wait("a helper's phone to ring", helper_ringing))
            self.act(helper, "answer")
            self.wait_view(
                helper, "the whisper", lambda v: v["waiting_for"] == "Gather" or v["bridged_with"]
            )
            if self.twilio.call(helper.sid)["waiting_for"] == "Gather":
                self.say("The helper hears who is calling and presses 1.")
                self.act(helper, "press", digits="1")
            self.wait_view(
                call,
                "the resident and the helper to be connected",
                lambda v: bool(v["bridged_with"]),
            )
            self.say("The resident and the helper talk; the resident hangs up.")
            self.act(call, "hangup")
        return str(self.wait("the attempt to be recorded", lambda: self.callback_outcome(call)))


def _offer_key(prompt: str, wanted: str | None) -> str:
    """The key the desk offers for `wanted` (a helper type's label or a reason), or the first
    one offered."""
    import re

    offered = re.findall(r"For (?:an? )?([^,]+), press (\d)\.", prompt)
    if not offered:
        raise ScenarioFailed(f"nothing is offered: {prompt}")
    for label, key in offered:
        if wanted is None or label == wanted:
            return key
    raise ScenarioFailed(f"{wanted} is not offered now: {prompt}")


EXPECTED = {
    "accept": {"completed"},
    "decline": {"completed", "returned"},
    "caller-drops-while-ringing": {"caller_dropped"},
    "caller-drops-at-announcement": {"caller_dropped", "completed"},
    "callback-person": {"connected"},
    "callback-machine": {"machine"},
    "nobody-on-duty": {"not_started"},
}
"""What the last line must say for the scenario to pass."""


def _load_env(path: Path) -> None:
    from ivr.settings import load_env_file

    load_env_file(path)


def _demo_account(engine: sa.Engine, staff_id: str, pin: str, out: TextIO) -> None:
    from ivr import accounts

    if accounts.get_record(engine, staff_id) is None:
        accounts.create_staff(
            engine, staff_id=staff_id, name=DEMO_NAME, roles=["call_taker"], pin=pin
        )
        print(f"Created the demo call-taker account {staff_id} (PIN {pin}).", file=out)
    elif accounts.verify_desk_pin(engine, staff_id, pin) is None:
        raise ScenarioFailed(
            f"staff account {staff_id} exists with another PIN (or is locked); pass --staff-id "
            "and --pin of a call-taker"
        )


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="bridgeline-simulate handoff", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--url", default="http://127.0.0.1:5000", help="the running service")
    parser.add_argument("--twilio", help="the local Twilio (default: TWILIO_API_BASE_URL)")
    parser.add_argument("--scenario", choices=SCENARIOS, default="accept")
    for name in SCENARIOS[1:]:
        parser.add_argument(f"--{name}", dest="scenario", action="store_const", const=name,
                            help=f"same as --scenario {name}")  # fmt: skip
    parser.add_argument("--staff-id", default=DEMO_STAFF_ID)
    parser.add_argument("--pin", default=DEMO_PIN)
    parser.add_argument("--timeout", type=float, default=WAIT_SECONDS, help="seconds per step")
    parser.add_argument("--env-file", help="KEY=VALUE file (default .env, else config/example.env)")
    args = parser.parse_args(argv)

    env_file = Path(args.env_file) if args.env_file else (
        Path(".env") if Path(".env").exists() else Path("config/example.env")
    )  # fmt: skip
    if env_file.exists():
        _load_env(env_file)
    twilio_url = args.twilio or os.environ.get("TWILIO_API_BASE_URL", "")
    if not twilio_url:
        print(
            "No local Twilio: TWILIO_API_BASE_URL is not set (see config/example.env).",
            file=sys.stderr,
        )
        return 2
    twilio = LocalTwilioClient(twilio_url)
    if not twilio.healthy():
        print(f"No local Twilio answers at {twilio_url}: start the service with scripts/serve "
              "and the example env.", file=sys.stderr)  # fmt: skip
        return 2
    import requests

    try:
        requests.get(args.url.rstrip("/") + "/healthz", timeout=10).raise_for_status()
        ready = requests.get(args.url.rstrip("/") + "/readyz", timeout=10)
    except requests.RequestException as exc:
        print(f"The service at {args.url} does not answer: {exc}", file=sys.stderr)
        return 2
    if ready.status_code != 200:
        print(f"Warning: the service says it is not ready: {ready.text[:300]}", file=out)

    from ivr.store.db import make_engine

    database_url = os.environ.get("DATABASE_URL", "")
    engine = make_engine(database_url)
    sim = Simulation(twilio, engine, out, args.staff_id, args.pin, timeout=args.timeout)
    problems_before = len(twilio.problems())
    started = time.monotonic()
    try:
        if not args.scenario.startswith("callback"):
            _demo_account(engine, args.staff_id, args.pin, out)
        run = getattr(sim, "run_" + args.scenario.replace("-", "_"))
        status = run()
    except NotPlayableNow as exc:
        print(f"NOT PLAYABLE AT THIS HOUR: {exc}", file=out)
        return NOT_PLAYABLE
    except (ScenarioFailed, ControlError) as exc:
        print(f"SCENARIO FAILED: {exc}", file=out)
        return 1
    finally:
        engine.dispose()
    problems = twilio.problems()[problems_before:]
    for problem in problems:
        print(f"TWILIO WOULD REFUSE: {problem}", file=out)
    kind = "callback" if args.scenario.startswith("callback") else "handoff"
    print(f"{kind} {status.replace('_', ' ')} ({time.monotonic() - started:.1f} s)", file=out)
    return 0 if status in EXPECTED[args.scenario] and not problems else 1

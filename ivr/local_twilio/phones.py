"""`bridgeline-simulate phones`: be any person on any call of the local Twilio, by hand.

    bridgeline-simulate phones            # the local Twilio of .env / config/example.env

    > call /voice/transfer-desk from +15205550199     someone dials in (a Voice URL path)
    > calls                                           every call: id, who, status, waiting for
    > 3f2a press 4821#                                the call whose SID ends in 3f2a presses keys
    > 3f2a say I need help                            ... speaks
    > 91bc answer | machine | busy | hangup           a ringing phone answers (a person or a
                                                      machine), is busy, hangs up
    > 91bc silence | record | wait                    says nothing, leaves a message, keeps holding
    > phone +15205550151 human                        that phone answers by itself from now on
    > show 3f2a                                       everything that call heard
    > texts                                           the texts Bridgeline sent

`last` names the newest call. What every person hears is printed as it happens, before each
prompt, one line per thing said, prefixed with the call's id.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ivr.local_twilio.client import ControlError, LocalTwilioClient, View

ACTIONS = {
    "press": "press",
    "say": "speak",
    "silence": "silence",
    "record": "record",
    "wait": "wait",
    "answer": "answer",
    "machine": "answer",
    "busy": "busy",
    "failed": "failed",
    "hangup": "hangup",
}


class Phones:
    """The console's state: which lines of which call were printed."""

    def __init__(self, twilio: LocalTwilioClient, out: TextIO) -> None:
        self.twilio = twilio
        self.out = out
        self.shown: dict[str, int] = {}

    def find(self, ref: str) -> View:
        calls = self.twilio.calls()
        if ref == "last" and calls:
            return calls[-1]
        found = [c for c in calls if c["sid"].endswith(ref)]
        if len(found) != 1:
            raise ControlError(f"{ref!r} names {len(found)} calls; type more of the SID's end")
        return found[0]

    def news(self) -> None:
        """Print what each person heard since the last prompt."""
        for view in self.twilio.calls():
            lines = view["heard"][self.shown.get(view["sid"], 0) :]
            for line in lines:
                print(f"  {view['sid'][-4:]} {_who(view):<22}| {line}", file=self.out)
            self.shown[view["sid"]] = len(view["heard"])

    def run(self, line: str) -> bool:
        """Do one command; False to quit."""
        words = line.split()
        if not words:
            return True
        head = words[0]
        if head in ("quit", "exit"):
            return False
        if head == "help":
            print((__doc__ or "").split("\n\n", 2)[1], file=self.out)
        elif head == "calls":
            for view in self.twilio.calls():
                waiting = f", at {view['waiting_for']}" if view["waiting_for"] else ""
                print(
                    f"  {view['sid'][-4:]} {_who(view):<22} {view['status']}{waiting}",
                    file=self.out,
                )
        elif head == "texts":
            texts = self.twilio.messages()
            for text in texts:
                print(f"  text to {text['to']} from {text['from']}: {text['body']}", file=self.out)
            if not texts:
                print("  (no texts sent)", file=self.out)
        elif head == "call":
            path = words[1] if len(words) > 1 else "/voice/self-service"
            caller = words[3] if len(words) > 3 and words[2] == "from" else "+15205550123"
            self.twilio.dial_in(url=path, from_=caller)
        elif head == "phone" and len(words) == 3:
            self.twilio.set_phone(words[1], words[2])
        elif head == "show" and len(words) == 2:
            view = self.find(words[1])
            for heard in view["heard"]:
                print(f"  {heard}", file=self.out)
        elif len(words) >= 2 and words[1] in ACTIONS:
            view = self.find(head)
            action = ACTIONS[words[1]]
            rest = " ".join(words[2:])
            fields = {
                "press": {"digits": rest},
                "speak": {"words": rest},
                "record": {"seconds": rest or "12"},
                "answer": {"as": "machine" if words[1] == "machine" else "human"},
            }.get(action, {})
            self.twilio.act(view["sid"], action, **fields)
        else:
            print("  ? (help lists the commands)", file=self.out)
        return True


def _who(view: View) -> str:
    if view["direction"] == "inbound":
        return f"{view['from']} (caller)"
    return f"{view['to']}"


def main(
    argv: list[str] | None = None, out: TextIO | None = None, read: Callable[[str], str] = input
) -> int:
    out = out or sys.stdout
    args = list(sys.argv[1:] if argv is None else argv)
    base = args[args.index("--twilio") + 1] if "--twilio" in args else ""
    if not base:
        from ivr.settings import load_env_file

        for name in (".env", "config/example.env"):
            if Path(name).exists():
                load_env_file(Path(name))
                break
        base = os.environ.get("TWILIO_API_BASE_URL", "")
    twilio = LocalTwilioClient(base) if base else None
    if twilio is None or not twilio.healthy():
        print(
            f"No local Twilio answers at {base or '(TWILIO_API_BASE_URL unset)'}.", file=sys.stderr
        )
        return 2
    phones = Phones(twilio, out)
    print("Local Twilio phones (help lists the commands, quit ends).", file=out)
    while True:
        phones.news()
        try:
            line = read("> ")
        except EOFError:
            break
        try:
            if not phones.run(line.strip()):
                break
        except ControlError as exc:
            print(f"  ! {exc}", file=out)
    phones.news()
    return 0

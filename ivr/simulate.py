"""bridgeline-simulate: play Twilio's part against Bridgeline.

`bridgeline-simulate` plays a self-service call (ivr.simulator); `bridgeline-simulate handoff`
plays every party of a warm handoff and `bridgeline-simulate phones` is a console on the local
Twilio's phones (ivr.local_twilio). The dispatch lives here so that the call player, which the
local Twilio uses, imports nothing of the local Twilio.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["handoff"]:
        # Every party of a warm handoff, against a running service and the local Twilio.
        from ivr.local_twilio.handoff import main as handoff

        return handoff(argv[1:])
    if argv[:1] == ["phones"]:
        # Any person on any call of the local Twilio, by hand.
        from ivr.local_twilio.phones import main as phones

        return phones(argv[1:])
    from ivr.simulator import main as call

    return call(argv)


if __name__ == "__main__":
    sys.exit(main())

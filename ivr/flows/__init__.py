"""Phone flows, one per module: what happens on a call, from request values to TwiML and records."""

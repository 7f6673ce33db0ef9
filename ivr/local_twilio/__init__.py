"""A local Twilio: the part of Twilio Voice and Messaging Bridgeline uses, on this machine.

`scripts/serve` starts it (the `twilio` process of the Procfile) when TWILIO_API_BASE_URL
names a loopback address, as the example env does, so the whole product runs without a Twilio
account or a network: workers place calls and join conferences through its REST API, and it
rings, answers, plays TwiML, runs conferences and sends Twilio's signed callbacks back to the
web processes. The people on those calls are played by `bridgeline-simulate handoff` (or any
client of its control API, see `client.py`).

    switch.py        calls, conferences, queues and phones: the telephone exchange
    server.py        Twilio's REST API (2010-04-01) and the control API, over HTTP
    callbacks.py     webhooks signed as Twilio signs them, sent in order from one thread
    twiml_schema.py  every TwiML document checked against Twilio's XSD (TWIML_XSD)
    resources.py     Twilio's JSON for calls, conferences, participants, messages
    client.py        the control API for a program that plays the people on the calls
    handoff.py       `bridgeline-simulate handoff`: every party of a warm handoff

Nothing here is imported by the web app or the workers (they speak HTTP to it).
"""

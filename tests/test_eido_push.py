# ruff: noqa: F811 (fixtures imported from tests.desk_fixtures are test parameters)
"""A partner subscribes a URL and receives each change of a handoff's EIDO once, pushed by a
worker through the outbox, signed, with an idempotency key: also when its endpoint is down for
a while (tried again with backoff), and failures show on /metrics and to supervisors."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import responses
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from ivr import partners
from ivr.accounts import Staff
from ivr.flows import handoffs
from ivr.flows.desk import TransferDesk
from ivr.partners import deliveries, subscriptions
from ivr.partners.cli import main as partners_cli
from ivr.partners.eido_http import context_of
from ivr.simulator import Call
from tests.console_fixtures import LoggedIn, logged_in_client, make_staff
from tests.desk_fixtures import (  # noqa: F401 — fixtures pytest finds by name
    WEDNESDAY_11AM,
    call_taker,
    desk,
    twilio_post,
    worker_clock,
)
from tests.eido_check import assert_conforms
from tests.live_service import free_port
from tests.test_handoff_log import (
    HELPER_1,
    _conference,
    _desk_to_conference,
    _expect_helper_dial,
    _status,
)

FIXTURES = (make_staff, logged_in_client)
"""Fixtures this module uses from tests/console_fixtures.py (pytest finds them here)."""

Place = Callable[..., Call]


class PartnerEndpoint:
    """A partner's HTTP endpoint on 127.0.0.1: down (nothing listening) until `up()`."""

    def __init__(self) -> None:
        self.port = free_port()  # nothing listens on it until up()
        self.url = f"http://127.0.0.1:{self.port}/eido"
        self.received: list[dict[str, Any]] = []
        self.answer = 200
        self.server: ThreadingHTTPServer | None = None

    def up(self) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.received.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                self.send_response(endpoint.answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def endpoint() -> Iterator[PartnerEndpoint]:
    made = PartnerEndpoint()
    yield made
    made.down()


@pytest.fixture
def push_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the time the push worker and its sweep see."""
    import workers.eido_push

    def set_time(moment: datetime) -> None:
        monkeypatch.setattr(workers.eido_push, "_now", lambda: moment)

    set_time(WEDNESDAY_11AM)
    return set_time


def subscribe(engine: sa.Engine, url: str) -> tuple[int, str]:
    key = partners.create_partner(
        engine, name="Pima County CAD", scopes=["eido"], jurisdictions=["city"]
    )
    made = subscriptions.create_subscription(
        engine, key.partner.key_prefix, url, since=WEDNESDAY_11AM - timedelta(hours=1)
    )
    return made.subscription.id, made.signing_secret


def settled_handoff(app: Flask, call: Place, to_number: str = "+15205550100") -> int:
    """A handoff the tree refused (a weapon): recorded once, never changes after."""
    c = call("/voice/intake", from_number="+15205550123", to_number=to_number)
    with app.app_context():
        return handoffs.start_handoff(
            app.extensions["bridgeline"].engine,
            app.extensions["bridgeline"].queues,
            call_sid=c.call_sid,
            call_taker_staff_id="4821",
            helper_type="navigator",
            answers={"weapon": True},
            reason="console",
            now=WEDNESDAY_11AM,
        ).id


def sweep_and_push(run_jobs: Callable[[], int]) -> int:
    from workers.eido_push import sweep_eido_push

    sweep_eido_push()
    return run_jobs()


def test_a_partner_down_then_up_receives_each_change_once_in_order_signed(
    app: Flask,
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    endpoint: PartnerEndpoint,
    push_clock: Callable[[datetime], None],
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    twilio_api.add_passthru("http://127.0.0.1")
    sub_id, secret = subscribe(engine, endpoint.url)
    c = _desk_to_conference(call, "3")  # navigator, city
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)

    # Change 1 (requested): the partner is down; the dial job runs too.
    _expect_helper_dial(twilio_api, HELPER_1)
    sweep_and_push(run_jobs)
    (first,) = deliveries.deliveries_of(engine, sub_id)
    assert first.status is deliveries.DeliveryStatus.PENDING and first.attempts == 1
    assert first.last_error == "no answer: ConnectionError"
    assert first.next_attempt_at == WEDNESDAY_11AM + timedelta(seconds=15)

    # Change 2 (ringing) while still down: recorded, and it waits behind change 1.
    _status(twilio_post, handoff.id, 1, HELPER_1, "ringing", 1, 3)
    push_clock(WEDNESDAY_11AM + timedelta(seconds=5))
    sweep_and_push(run_jobs)
    assert [d.attempts for d in deliveries.deliveries_of(engine, sub_id)] == [1, 0]

    # Nothing changed: another sweep records nothing.
    sweep_and_push(run_jobs)
    assert len(deliveries.deliveries_of(engine, sub_id)) == 2

    # The partner comes up; after the backoff both changes arrive, in order, once each.
    endpoint.up()
    push_clock(WEDNESDAY_11AM + timedelta(seconds=16))
    sweep_and_push(run_jobs)
    push_clock(WEDNESDAY_11AM + timedelta(seconds=40))
    sweep_and_push(run_jobs)
    sweep_and_push(run_jobs)
    assert [d.status.value for d in deliveries.deliveries_of(engine, sub_id)] == [
        "delivered",
        "delivered",
    ]
    assert len(endpoint.received) == 2
    documents = [json.loads(r["body"]) for r in endpoint.received]
    for document in documents:
        assert_conforms(document)
        assert document["incidentComponent"]["internalIncidentId"] == str(handoff.id)
    assert [d["incidentComponent"]["incidentStatusInternalText"] for d in documents] == [
        ["requested"],
        ["ringing"],
    ]
    keys = [r["headers"]["Idempotency-Key"] for r in endpoint.received]
    assert len(set(keys)) == 2 and all(k.startswith(f"{sub_id}:{handoff.id}:") for k in keys)
    for r in endpoint.received:
        assert r["headers"]["Content-Type"] == "application/json"
        stamp = int(r["headers"]["X-Bridgeline-Signature"].split(",")[0][2:])
        assert subscriptions.verify(
            secret, r["body"], r["headers"]["X-Bridgeline-Signature"], now=stamp
        )
        assert not subscriptions.verify(
            "whsec_wrong", r["body"], r["headers"]["X-Bridgeline-Signature"], now=stamp
        )
        assert not subscriptions.verify(
            secret, r["body"] + b" ", r["headers"]["X-Bridgeline-Signature"], now=stamp
        )

    # A second worker running the same stream sends nothing more.
    from workers.eido_push import push_stream

    assert push_stream(sub_id, handoff.id) == "0 sent"
    assert len(endpoint.received) == 2


def test_a_push_a_worker_died_holding_is_sent_again_with_the_same_idempotency_key(
    app: Flask,
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    endpoint: PartnerEndpoint,
    push_clock: Callable[[datetime], None],
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
) -> None:
    twilio_api.add_passthru("http://127.0.0.1")
    sub_id, _secret = subscribe(engine, endpoint.url)
    _desk_to_conference(call, "3")
    _expect_helper_dial(twilio_api, HELPER_1)
    from workers.eido_push import sweep_eido_push

    sweep_eido_push()
    (recorded,) = deliveries.deliveries_of(engine, sub_id)
    # A worker claims it and dies before it hears back.
    assert deliveries.claim_next(engine, sub_id, recorded.handoff_id, WEDNESDAY_11AM)
    endpoint.up()
    run_jobs()
    assert endpoint.received == []  # claimed by the dead worker: nobody else sends it yet
    push_clock(WEDNESDAY_11AM + deliveries.STALE_SENDING + timedelta(seconds=1))
    sweep_and_push(run_jobs)
    keys = [r["headers"]["Idempotency-Key"] for r in endpoint.received]
    # The held change went out once, first; the dial the worker made since is the next change.
    assert keys[0] == recorded.idempotency_key and keys.count(recorded.idempotency_key) == 1
    assert [d.status.value for d in deliveries.deliveries_of(engine, sub_id)] == [
        "delivered"
    ] * len(keys)


def test_a_partner_that_keeps_refusing_is_given_up_on_and_shown_to_supervisors(
    app: Flask,
    call: Place,
    call_taker: Staff,
    client: FlaskClient,
    desk: TransferDesk,
    engine: sa.Engine,
    endpoint: PartnerEndpoint,
    logged_in_client: LoggedIn,
    push_clock: Callable[[datetime], None],
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
) -> None:
    twilio_api.add_passthru("http://127.0.0.1")
    sub_id, _secret = subscribe(engine, endpoint.url)
    endpoint.answer = 503
    endpoint.up()
    settled_handoff(app, call)  # one change, nothing after it
    at = WEDNESDAY_11AM
    sweep_and_push(run_jobs)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "bridgeline_eido_pushes_retrying 1.0" in metrics
    supervisor = logged_in_client("supervisor", staff_id="9001")
    page = supervisor.get("/partners").get_data(as_text=True)
    assert "Pima County CAD" in page and "the partner answered 503" in page
    assert "1 partner not taking our pushes right now" in page
    waits = []
    for _ in range(deliveries.MAX_ATTEMPTS - 1):
        (pending,) = deliveries.deliveries_of(engine, sub_id)
        waits.append(int((pending.next_attempt_at - at).total_seconds()))
        at = pending.next_attempt_at
        push_clock(at)
        sweep_and_push(run_jobs)
    assert waits == [15, 30, 60, 120, 240, 480, 960, 1920, 3600]
    (given_up,) = deliveries.deliveries_of(engine, sub_id)
    assert given_up.status.value == "failed" and given_up.attempts == deliveries.MAX_ATTEMPTS
    assert len(endpoint.received) == deliveries.MAX_ATTEMPTS
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "bridgeline_eido_pushes_failed 1.0" in metrics
    assert 'bridgeline_eido_deliveries{status="failed"} 1.0' in metrics
    row = supervisor.get("/partners").get_data(as_text=True)
    assert '<td class="failed">1</td>' in row


def test_only_the_partners_jurisdictions_and_only_eido_keys_are_pushed(
    app: Flask, call: Place, engine: sa.Engine
) -> None:
    crm = partners.create_partner(engine, name="City CRM", scopes=["open311"])
    with pytest.raises(partners.PartnerError, match="eido scope"):
        subscriptions.create_subscription(engine, crm.partner.key_prefix, "https://crm.example/x")
    south = partners.create_partner(
        engine, name="South side", scopes=["eido"], jurisdictions=["south_side"]
    )
    for bad in ("http://crm.example/x", "ftp://x", "https://user:pw@x.example/", "nonsense"):
        with pytest.raises(partners.PartnerError):
            subscriptions.create_subscription(engine, south.partner.key_prefix, bad)
    made = subscriptions.create_subscription(
        engine,
        south.partner.key_prefix,
        "https://south.example/eido",
        since=WEDNESDAY_11AM - timedelta(hours=1),
    )
    handed = {
        place: settled_handoff(app, call, number)
        for place, number in (("city", "+15205550100"), ("south_side", "+15205550180"))
    }
    streams = deliveries.record_changes(engine, context_of(app), WEDNESDAY_11AM)
    assert streams == [(made.subscription.id, handed["south_side"])]
    partners.set_enabled(engine, south.partner.key_prefix, False)
    assert deliveries.record_changes(engine, context_of(app), WEDNESDAY_11AM) == []


def test_operators_subscribe_from_the_command_line_and_see_how_pushes_fare(
    engine: sa.Engine, env: dict[str, str]
) -> None:
    made = partners.create_partner(engine, name="County CAD", scopes=["eido"])
    out = io.StringIO()
    argv = ["subscribe", made.partner.key_prefix, "--url", "https://cad.example/eido"]
    assert partners_cli(argv, env=env, stdout=out) == 0
    first, last = out.getvalue().strip().splitlines()
    secret = last.split()[-1]
    assert secret.startswith("whsec_")
    sub_id = first.split()[1].rstrip(":")
    listing = io.StringIO()
    assert partners_cli(["subscriptions"], env=env, stdout=listing) == 0
    assert f"{sub_id}\tCounty CAD\tcad.example\ton\tdelivered 0" in listing.getvalue()
    assert secret not in listing.getvalue()
    stopped = io.StringIO()
    assert partners_cli(["unsubscribe", sub_id], env=env, stdout=stopped) == 0
    assert stopped.getvalue().strip() == f"subscription {sub_id} off"


def test_a_dropped_caller_called_back_closes_the_incident_and_the_partner_hears_of_it(
    app: Flask,
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    sub_id, _secret = subscribe(engine, "https://cad.pima.example/eido")
    c = _desk_to_conference(call, "3")
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    _expect_helper_dial(twilio_api, HELPER_1)
    run_jobs()
    _status(twilio_post, handoff.id, 1, HELPER_1, "ringing", 1, 2)
    desk.clock = lambda: WEDNESDAY_11AM + timedelta(seconds=10)
    _conference(twilio_post, live, "participant-leave", 3, 9, label="caller", sid=c.call_sid)
    context = context_of(app)
    deliveries.record_changes(engine, context, WEDNESDAY_11AM + timedelta(seconds=20))

    def statuses() -> list[list[str]]:
        return [
            json.loads(d.body)["incidentComponent"]["incidentStatusCommonRegistryText"]
            for d in deliveries.deliveries_of(engine, sub_id)
        ]

    assert statuses()[-1] == ["Active"]  # the callback is still owed
    dropped = handoffs.get_handoff(engine, handoff.id)
    assert dropped is not None and dropped.callback_id is not None
    # Time passes: the sweep has looked well past the handoff's last change.
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE partner_subscriptions SET cursor_at = :at"),
            {"at": datetime.now(UTC)},
        )
    # The callback is made: only the callbacks row changes; the partner hears the incident close.
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE callbacks SET status = 'done', updated_at = :at WHERE id = :id"),
            # (the callback's rows carry the real clock, the handoff's the test's Wednesday)
            {"at": datetime.now(UTC) + timedelta(minutes=1), "id": dropped.callback_id},
        )
    before = len(statuses())
    deliveries.record_changes(engine, context, WEDNESDAY_11AM + timedelta(minutes=21))
    assert len(statuses()) == before + 1 and statuses()[-1] == ["Closed"]
    deliveries.record_changes(engine, context, WEDNESDAY_11AM + timedelta(minutes=22))
    assert len(statuses()) == before + 1  # nothing new: nothing recorded

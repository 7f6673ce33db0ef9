"""Staff login for the web pages: sessions, CSRF, roles, and login rate limiting.

- Sessions are Flask's signed cookie (Secure, HttpOnly, SameSite=Lax) holding the staff ID and
  the account's session epoch; changing the password or disabling the account ends them.
- CSRF (Flask-WTF) guards every state-changing request except Twilio's signed webhooks: the
  voice blueprints check X-Twilio-Signature, a stronger proof than a token, and carry no cookie.
- `require_role(*roles)`: anonymous page visits go to /login, anonymous /api/ calls get 401
  JSON, a signed-in staff member without the role gets 403 (HTML or JSON).
- Failed logins are counted in SQL (not Redis, so the limit holds when Redis is down), per
  account and per client address.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect

from ivr import accounts, store
from ivr.accounts import Role, Staff
from ivr.store.account_tables import login_attempts

log = logging.getLogger(__name__)

EXTENSION_KEY = "bridgeline_auth"
"""Key of this module's CSRFProtect in app.extensions."""

SESSION_LIFETIME = timedelta(hours=12)
"""A signed-in session lasts one long shift, then asks for the password again."""

FAILURE_WINDOW = timedelta(minutes=15)
"""Failed logins older than this no longer count toward a lockout."""

ACCOUNT_FAILURE_LIMIT = 5
"""Failed logins for one staff ID within the window before that ID is locked."""

ADDRESS_FAILURE_LIMIT = 20
"""Failed logins from one client address within the window before it is locked."""

ATTEMPT_RETENTION = timedelta(days=30)
"""How long login attempts are kept (for the lockout and for review)."""

HOME_BY_ROLE = (
    (Role.CALL_TAKER, "console.call_taker"),
    (Role.CLINICIAN, "console.clinician"),
    (Role.SUPERVISOR, "dashboard.index"),
    (Role.AGENT_311, "work_queue.index"),
)
"""Where each role lands after signing in, in order of preference."""

bp = Blueprint("auth", __name__, template_folder="console/templates")

F = TypeVar("F", bound=Callable[..., Any])


# ------------------------------------------------------------------------------- current user


_STAFF_KEY = "bridgeline.staff"
"""Where the signed-in staff member is kept for the rest of one request (its WSGI environ)."""


def current_staff() -> Staff | None:
    """The signed-in staff member of this request (checked against the database), or None."""
    # Cached on the request, not on `g`: an app context (and its `g`) can outlive a request
    # while a streamed response is still being read, and must not carry one user into the next.
    if _STAFF_KEY in request.environ:
        return request.environ[_STAFF_KEY]  # type: ignore[no-any-return]
    staff: Staff | None = None
    staff_id = session.get("staff_id")
    if isinstance(staff_id, str):
        record = accounts.get_record(store.engine(), staff_id)
        since = session.get("since")
        fresh = isinstance(since, int | float) and (
            datetime.now(UTC).timestamp() - since < SESSION_LIFETIME.total_seconds()
        )
        if (
            record is not None
            and record.active
            and record.session_epoch == session.get("epoch")
            and fresh
        ):
            staff = record.staff
        else:
            session.clear()
    request.environ[_STAFF_KEY] = staff
    return staff


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _refuse(status: int, message: str) -> Response:
    if _wants_json():
        response = jsonify(error=message)
    else:
        response = Response(
            render_template("refused.html", status=status, message=message, staff=current_staff())
        )
    response.status_code = status
    return response


def require_role(*roles: str | Role) -> Callable[[F], F]:
    """Let the view run only for a signed-in staff member holding one of `roles`."""
    wanted = frozenset(Role(r).value for r in roles)
    if not wanted:
        raise ValueError("require_role needs at least one role")

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            staff = current_staff()
            if staff is None:
                if _wants_json():
                    return _refuse(401, "sign in first")
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if not staff.roles & wanted:
                log.info(
                    "refused a page to a staff role: path=%s roles=%s",
                    request.path,
                    ",".join(sorted(staff.roles)),
                )
                return _refuse(403, "Your role may not see this page.")
            return view(*args, **kwargs)

        guarded.required_roles = wanted  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


def home_url(staff: Staff) -> str:
    """The first page `staff` may see."""
    for role, endpoint in HOME_BY_ROLE:
        if role.value in staff.roles and endpoint in current_app.view_functions:
            return url_for(endpoint)
    return url_for("auth.account")


# -------------------------------------------------------------------------------- rate limits


def _client_address() -> str:
    return (request.remote_addr or "unknown")[:64]


def _recent_failures(conn: sa.Connection, column: sa.Column[Any], value: str) -> int:
    """Failures for `value` within the window and, for an account, since its last success."""
    since = datetime.now(UTC) - FAILURE_WINDOW
    if column is login_attempts.c.staff_id:
        last_success = conn.execute(
            sa.select(sa.func.max(login_attempts.c.at)).where(
                column == value, login_attempts.c.succeeded.is_(True)
            )
        ).scalar_one()
        if last_success is not None:
            if last_success.tzinfo is None:  # SQLite hands back naive UTC
                last_success = last_success.replace(tzinfo=UTC)
            since = max(since, last_success)
    query = sa.select(sa.func.count()).where(
        column == value, login_attempts.c.succeeded.is_(False), login_attempts.c.at > since
    )
    return int(conn.execute(query).scalar_one())


def login_locked(engine: sa.Engine, staff_id: str, address: str) -> bool:
    """True when this staff ID or this client address has failed too often recently."""
    with engine.connect() as conn:
        return (
            _recent_failures(conn, login_attempts.c.staff_id, staff_id) >= ACCOUNT_FAILURE_LIMIT
            or _recent_failures(conn, login_attempts.c.client_address, address)
            >= ADDRESS_FAILURE_LIMIT
        )


def record_attempt(engine: sa.Engine, staff_id: str, address: str, succeeded: bool) -> None:
    """Keep one login attempt; forget attempts past the retention period."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            login_attempts.insert().values(
                staff_id=staff_id[:64], client_address=address, succeeded=succeeded, at=now
            )
        )
        conn.execute(login_attempts.delete().where(login_attempts.c.at < now - ATTEMPT_RETENTION))


# ---------------------------------------------------------------------------------- the pages


def _safe_next(target: str | None) -> str | None:
    """A local path to return to after login (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if target.startswith(("/login", "/logout", "/voice/")):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The sign-in form: staff ID and password."""
    staff = current_staff()
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if staff is not None:
            return redirect(next_url or home_url(staff))
        return render_template("login.html", error=None, next_url=next_url, staff_id="")
    staff_id = request.form.get("staff_id", "").strip()[:64]
    password = request.form.get("password", "")
    engine = store.engine()
    address = _client_address()
    if login_locked(engine, staff_id, address):
        log.warning("login refused: too many failures for this account or address")
        return _login_error(staff_id, next_url, 429, "Too many failed sign-ins. Wait 15 minutes.")
    found = accounts.verify_password(engine, staff_id, password)
    record_attempt(engine, staff_id, address, found is not None)
    if found is None:
        log.info("login failed")
        return _login_error(staff_id, next_url, 401, "Staff ID or password is wrong.")
    epoch = accounts.session_epoch(engine, found.staff_id)
    session.clear()  # no state from before the login survives it (session fixation)
    session.permanent = True
    session.update(staff_id=found.staff_id, epoch=epoch, since=int(datetime.now(UTC).timestamp()))
    request.environ[_STAFF_KEY] = found
    log.info("login succeeded: roles=%s", ",".join(sorted(found.roles)))
    return redirect(next_url or home_url(found))


def _login_error(staff_id: str, next_url: str | None, status: int, message: str) -> Response:
    page = render_template("login.html", error=message, next_url=next_url, staff_id=staff_id)
    return Response(page, status=status)


@bp.post("/logout")
def logout() -> Response:
    """End the session (a POST with the CSRF token, so no other site can sign you out)."""
    session.clear()
    request.environ[_STAFF_KEY] = None
    return redirect(url_for("auth.login"))  # type: ignore[return-value]


@bp.get("/account")
@require_role(*Role)
def account() -> str:
    """Who is signed in, their roles, and the pages they may open."""
    staff = current_staff()
    assert staff is not None
    pages = list(
        dict.fromkeys(
            (endpoint, label)
            for role, endpoint, label in (
                (Role.CALL_TAKER, "console.call_taker", "Call-taker console"),
                (Role.CLINICIAN, "console.clinician", "Clinician handoffs"),
                (Role.SUPERVISOR, "dashboard.index", "Dashboard"),
                (Role.AGENT_311, "work_queue.index", "311 reports"),
                (Role.SUPERVISOR, "work_queue.index", "311 reports"),
                (Role.CALL_TAKER, "work_queue.index", "311 reports"),
            )
            if role.value in staff.roles and endpoint in current_app.view_functions
        )
    )
    return render_template("account.html", staff=staff, pages=pages)


# ------------------------------------------------------------------------------ app wiring


def _is_twilio_webhook() -> bool:
    """True for routes Twilio calls: they are signature-checked instead of CSRF-checked."""
    from ivr.voice.common import require_twilio_signature

    if request.path.startswith("/voice/"):
        return True
    blueprint = request.blueprint
    gates = current_app.before_request_funcs.get(blueprint, []) if blueprint else []
    return require_twilio_signature in gates


CSRF_EXEMPT_KEY = "bridgeline_csrf_exempt"
"""app.extensions key: names of blueprints whose callers prove themselves with an API key."""


def exempt_from_csrf(app: Flask, blueprint: str) -> None:
    """Partner APIs authenticate every request with a key and carry no session cookie."""
    app.extensions.setdefault(CSRF_EXEMPT_KEY, set()).add(blueprint)


def _csrf_error(exc: CSRFError) -> Response:
    log.warning("refused a request without a valid CSRF token: path=%s", request.path)
    return _refuse(400, "This form has expired or did not come from Bridgeline. Reload the page.")


def _security_headers(response: Response) -> Response:
    """Pages behind the login: no framing, scripts only from here, never cached."""
    if request.path.startswith("/voice/"):
        return response
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    )
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if session.get("staff_id") or request.path.startswith(("/api/", "/console", "/account")):
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Session cookie settings, CSRF protection, the login blueprint and security headers."""
    app.config.update(
        SESSION_COOKIE_NAME="bridgeline_session",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked below, for everything but Twilio's webhooks
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
    )
    csrf = CSRFProtect(app)
    app.extensions[EXTENSION_KEY] = csrf

    @app.before_request
    def check_csrf() -> None:
        if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
            return
        if request.url_rule is None or _is_twilio_webhook():
            return  # no route (404/405 answers) or a Twilio webhook with its signature check
        if request.blueprint in app.extensions.get(CSRF_EXEMPT_KEY, ()):
            return  # a partner API: its key is checked by the route
        csrf.protect()

    app.register_error_handler(CSRFError, _csrf_error)
    app.after_request(_security_headers)
    app.register_blueprint(bp)

"""`GET /partners`: supervisors see each partner subscription and how its EIDO pushes fare.

Delivered, waiting, being retried after a refusal or no answer, and given up on, with the last
error in words and the last delivery in local time. No caller data: counts, hosts and errors.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, render_template

from ivr.accounts import Role
from ivr.auth import require_role
from ivr.partners import deliveries
from ivr.services import services


def problem_words(error: str | None) -> str:
    """A delivery error in plain words ("HTTP 503" -> "the partner answered 503")."""
    if not error:
        return "none"
    if error.startswith("HTTP "):
        return f"the partner answered {error[5:]}"
    if error.startswith("no answer: "):
        return f"no answer from the partner ({error[11:]})"
    return error


bp = Blueprint("partners", __name__, url_prefix="/partners", template_folder="templates")


@bp.get("")
@require_role(Role.SUPERVISOR)
def index() -> Any:
    """The subscriptions and their pushes."""
    program = services().program
    rows = deliveries.health(services().engine)
    return render_template(
        "partners/index.html",
        rows=rows,
        problem_words=problem_words,
        zone=program.zone,
        failing=sum(1 for r in rows if r.failed or r.retrying),
    )


def init_app(app: Flask) -> None:
    """Serve the supervisors' partner page."""
    app.register_blueprint(bp)

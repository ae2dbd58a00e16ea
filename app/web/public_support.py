"""The staff page of the public-support test (Form 990 Schedule A, Part II): the five-year
computation for a tax year, each figure linked to its gifts. Read-only: reviewers record
the facts it uses through the API (docs/public-support.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

from flask import Blueprint, Response, abort, g, render_template, request
from flask_login import current_user
from sqlalchemy import select

from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.ledger.csv_export import csv_chunks
from app.ledger.public_support_forecast import (
    YEARS_AHEAD,
    Expected,
    forecast_data,
    support_forecast,
)
from app.ledger.schedule_b import STAFF_COPY_PERMISSION, staff_copy_seen
from app.presenters.public_support import (
    SCHEDULE_B_COPIES,
    SCHEDULE_B_HEADER,
    public_support_data,
    rules,
    schedule_b_data,
    schedule_b_rows,
)
from app.web.access import role_required
from models import AuditEntry
from models.money import MoneyError, parse_typed_amount
from policies.public_support import percent_text

bp = Blueprint("public_support", __name__, url_prefix="/staff/public-support")


def _year(default: int, latest: int) -> int:
    value = request.args.get("year", "")
    if not value:
        return default
    if not (value.isascii() and value.isdigit()) or not 1900 <= int(value) <= latest:
        abort(400)
    return int(value)


def _proposed(today) -> tuple[Expected | None, dict]:
    """The what-if form's gift (GET: it changes nothing), and its errors."""
    amount = (request.args.get("proposed_amount") or "").strip()
    if not amount:
        return None, {}
    errors: dict[str, str] = {}
    try:
        minor = parse_typed_amount(amount, state().reporting_currency)
    except MoneyError as error:
        errors["proposed_amount"] = str(error)
    on = today
    if request.args.get("proposed_on"):
        try:
            on = date.fromisoformat(request.args["proposed_on"])
        except ValueError:
            errors["proposed_on"] = "a date, YYYY-MM-DD"
    if "proposed_on" not in errors and not today <= on <= date(today.year + YEARS_AHEAD, 12, 31):
        errors["proposed_on"] = f"from today to the end of {today.year + YEARS_AHEAD}"
    if errors:
        return None, errors
    return Expected(0, on, minor, "proposed", None), {}


@bp.get("/")
@role_required(READ)
def index():
    today = state().today()
    year = _year(today.year - 1, today.year)
    data = public_support_data(get_session(), year, state().reporting_currency)
    proposed, errors = _proposed(today)
    forecast = support_forecast(get_session(), today, rules(), state().reporting_currency,
                                proposed)
    return render_template("public_support/index.html", data=data, year=year,
                           choices=list(range(today.year, today.year - 8, -1)),
                           forecast=forecast_data(forecast, state().reporting_currency),
                           proposed=proposed, errors=errors), 422 if errors else 200


def _copy(default: str = "staff") -> str:
    copy = request.args.get("copy") or default
    if copy not in SCHEDULE_B_COPIES:
        abort(400)
    return copy


def _staff_copy_allowed(copy: str) -> None:
    """The staff copy names contributors and their postal addresses: an export (403 for a
    role that may not export)."""
    if copy == "staff" and not current_user.can(STAFF_COPY_PERMISSION):
        abort(403)


@bp.get("/schedule-b")
@role_required(READ)
def schedule_b():
    """The worksheet: the staff copy for those who may see it (audited at each view), else
    the public copy; asking for the staff copy without the permission is a 403."""
    today = state().today()
    year = _year(today.year - 1, today.year)
    copy = _copy("staff" if current_user.can(STAFF_COPY_PERMISSION) else "public")
    _staff_copy_allowed(copy)
    session = get_session()
    data = schedule_b_data(session, year, state().reporting_currency, copy)
    if copy == "staff":
        staff_copy_seen(session, g.actor, year, "html", len(data["contributors"]))
    return render_template("public_support/schedule_b.html", data=data, year=year, copy=copy,
                           choices=list(range(today.year, today.year - 8, -1)))


@bp.get("/schedule-b.csv")
@role_required(READ)
def schedule_b_csv():
    """The worksheet as CSV, every cell neutralised against spreadsheet formulas. The staff
    copy (names and addresses) is an export: finance and admins only, as other exports, and
    audited; the public copy is the default."""
    today = state().today()
    year = _year(today.year - 1, today.year)
    copy = _copy("public")
    _staff_copy_allowed(copy)
    session = get_session()
    data = schedule_b_data(session, year, state().reporting_currency, copy)
    if copy == "staff":
        staff_copy_seen(session, g.actor, year, "csv", len(data["contributors"]))
    body = "".join(csv_chunks(SCHEDULE_B_HEADER[copy], schedule_b_rows(data)))
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="schedule-b-{year}-{copy}.csv"',
        "Cache-Control": "no-store"})


#: A forecast that takes longer than this to compute is recomputed for the dashboard at most
#: every WARNING_REFRESH_SECONDS, not after every ledger change: on a giving day every gift
#: changes the ledger, and the dashboard must not pay for the five-year computation on each
#: view (seconds at 100,000 gifts, see docs/performance.md). A fast one follows the ledger.
WARNING_SLOW_SECONDS = 0.5
WARNING_REFRESH_SECONDS = 15 * 60


@dataclass
class _Warning:
    key: tuple
    head: str | None
    computed_at: float
    cost: float
    value: dict | None


#: This process's last computed dashboard warning.
_warning: _Warning | None = None


def dashboard_warning() -> dict | None:
    """For the compliance dashboard: the forecast years below the rules' warning level, or
    None when none is (or there is no support at all). Recomputed when the day turns, and
    after the ledger changed (every change appends an audit entry): at once while the
    computation is cheap, otherwise at most every WARNING_REFRESH_SECONDS."""
    global _warning
    session = get_session()
    today = state().today()
    head = session.execute(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
                           ).scalar_one_or_none()
    key = (id(state()), today)
    now = time.monotonic()
    last = _warning
    if last is not None and last.key == key and (
            last.head == head or (last.cost >= WARNING_SLOW_SECONDS
                                  and now - last.computed_at < WARNING_REFRESH_SECONDS)):
        return last.value
    found = support_forecast(session, today, rules(), state().reporting_currency)
    below = [y for y in found.years if y.below(found.warning_below)]
    value = None if not below else {
        "threshold": percent_text(found.warning_below),
        "years": [(y.year, y.result.percentage_text) for y in below],
    }
    _warning = _Warning(key, head, now, time.monotonic() - now, value)
    return value

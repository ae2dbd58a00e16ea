"""The staff page of the public-support test (Form 990 Schedule A, Part II): the five-year
computation for a tax year, each figure linked to its gifts. Read-only: reviewers record
the facts it uses through the API (docs/public-support.md)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask_login import current_user

from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.ledger.csv_export import csv_chunks
from app.presenters.public_support import (
    SCHEDULE_B_COPIES,
    SCHEDULE_B_HEADER,
    public_support_data,
    schedule_b_data,
    schedule_b_rows,
)
from app.web.access import role_required

bp = Blueprint("public_support", __name__, url_prefix="/staff/public-support")


def _year(default: int, latest: int) -> int:
    value = request.args.get("year", "")
    if not value:
        return default
    if not (value.isascii() and value.isdigit()) or not 1900 <= int(value) <= latest:
        abort(400)
    return int(value)


@bp.get("/")
@role_required(READ)
def index():
    today = state().today()
    year = _year(today.year - 1, today.year)
    data = public_support_data(get_session(), year, state().reporting_currency)
    return render_template("public_support/index.html", data=data, year=year,
                           choices=list(range(today.year, today.year - 8, -1)))


def _copy() -> str:
    copy = request.args.get("copy") or "staff"
    if copy not in SCHEDULE_B_COPIES:
        abort(400)
    return copy


@bp.get("/schedule-b")
@role_required(READ)
def schedule_b():
    today = state().today()
    year = _year(today.year - 1, today.year)
    copy = _copy()
    data = schedule_b_data(get_session(), year, state().reporting_currency, copy)
    return render_template("public_support/schedule_b.html", data=data, year=year, copy=copy,
                           choices=list(range(today.year, today.year - 8, -1)))


@bp.get("/schedule-b.csv")
@role_required(READ)
def schedule_b_csv():
    """The worksheet as CSV, every cell neutralised against spreadsheet formulas. The staff
    copy (names and addresses) is an export: finance and admins only, as other exports."""
    today = state().today()
    year = _year(today.year - 1, today.year)
    copy = _copy()
    if copy == "staff" and not current_user.can("exports"):
        abort(403)
    data = schedule_b_data(get_session(), year, state().reporting_currency, copy)
    body = "".join(csv_chunks(SCHEDULE_B_HEADER[copy], schedule_b_rows(data)))
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="schedule-b-{year}-{copy}.csv"',
        "Cache-Control": "no-store"})

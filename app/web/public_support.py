"""The staff page of the public-support test (Form 990 Schedule A, Part II): the five-year
computation for a tax year, each figure linked to its gifts. Read-only: reviewers record
the facts it uses through the API (docs/public-support.md)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.presenters.public_support import public_support_data
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

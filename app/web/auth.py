"""Sign-in and sign-out.

A browser that signs in gets a device cookie (signed, for the sign-in page only): later
attempts from it are throttled on their own, so an attacker failing on the account from
elsewhere cannot keep its owner out (app.auth.login, docs/deployment.md).
"""

from __future__ import annotations

import math
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeTimedSerializer
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Email, Length

from app.auth.login import Device, authenticate, end_sessions
from app.db import get_session
from app.web.access import StaffUser, public

bp = Blueprint("auth", __name__)

DEVICE_COOKIE = "armslength_device"
DEVICE_COOKIE_AGE = timedelta(days=365)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False),
                                            Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") \
            and not urlsplit(target).netloc:
        return target
    return url_for("staff.home")


def _device_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="armslength-sign-in-device")


def _device() -> Device | None:
    cookie = request.cookies.get(DEVICE_COOKIE)
    if not cookie:
        return None
    try:
        data = _device_signer().loads(cookie, max_age=int(DEVICE_COOKIE_AGE.total_seconds()))
        return Device(user_id=int(data["u"]), device_id=str(data["d"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def _now():
    # Tests pass {"CLOCK": callable} to create_app to move time without sleeping.
    clock = current_app.config.get("CLOCK")
    return clock() if clock else None


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(url_for("staff.home"))
    form = LoginForm()
    status, headers = 200, {}
    if form.validate_on_submit():
        result = authenticate(get_session(), form.email.data, form.password.data,
                              address=request.remote_addr or "unknown", device=_device(),
                              now=_now())
        if result.user is not None:
            session.clear()  # a fresh session at sign-in: no fixation
            login_user(StaffUser(result.user))
            response = redirect(_safe_next(request.args.get("next")))
            response.set_cookie(
                DEVICE_COOKIE, _device_signer().dumps({"u": result.user.id, "d": result.device_id}),
                max_age=DEVICE_COOKIE_AGE, path=url_for("auth.login"), httponly=True,
                secure=current_app.config["SESSION_COOKIE_SECURE"], samesite="Lax")
            return response
        flash(result.message, "error")
        status = 401
        if result.retry_after is not None:
            status = 429
            headers["Retry-After"] = str(math.ceil(result.retry_after.total_seconds()))
    elif request.method == "POST":
        status = 400
    return make_response(render_template("auth/login.html", form=form), status, headers)


@bp.post("/logout")
@public
def logout():
    everywhere = True
    if current_user.is_authenticated:
        everywhere = end_sessions(get_session(), current_user.user_id)
    logout_user()
    session.clear()
    if everywhere:
        flash("You are signed out.", "info")
    else:
        flash("You are signed out in this browser. The database was too busy to end your "
              "other sessions; sign in and out again in a few minutes to end them.", "error")
    return redirect(url_for("auth.login"))

"""Sign-in and sign-out.

A browser that signs in gets a device cookie (signed, for the sign-in page only): later
attempts from it are throttled on their own, so an attacker failing on the account from
elsewhere cannot keep its owner out (app.auth.login, docs/deployment.md).

After the password, an account with a second factor gives a code (/login/code), and a
reviewer or admin without one, when REQUIRE_SECOND_FACTOR is on, sets one up first
(/login/enrol): both act only for the account whose password this browser gave in the
last PENDING_SECONDS (app.auth.second_factor).
"""

from __future__ import annotations

import math
import time
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
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, Length

from app.auth import second_factor, throttle
from app.auth.login import Device, authenticate, end_sessions, throttled_message
from app.db import get_session
from app.errors import ValidationFailed
from app.ledger.audit import Actor
from app.web.access import StaffUser, public
from models import User, utcnow

bp = Blueprint("auth", __name__)

DEVICE_COOKIE = "armslength_device"
DEVICE_COOKIE_AGE = timedelta(days=365)
#: Session key: the account whose password was just accepted, waiting for its second factor.
PENDING = "second_factor_pending"
#: How long that wait may last.
PENDING_SECONDS = 300


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False),
                                            Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class CodeForm(FlaskForm):
    code = StringField("Code from your authenticator app",
                       validators=[DataRequired(), Length(min=6, max=8)])


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
            return _password_accepted(result.user, result.device_id)
        flash(result.message, "error")
        status = 401
        if result.retry_after is not None:
            status = 429
            headers["Retry-After"] = str(math.ceil(result.retry_after.total_seconds()))
    elif request.method == "POST":
        status = 400
    return make_response(render_template("auth/login.html", form=form), status, headers)


def _complete_sign_in(user, device_id: str, next_path: str | None):
    session.clear()  # a fresh session at sign-in: no fixation
    login_user(StaffUser(user))
    response = redirect(_safe_next(next_path))
    response.set_cookie(
        DEVICE_COOKIE, _device_signer().dumps({"u": user.id, "d": device_id}),
        max_age=DEVICE_COOKIE_AGE, path=url_for("auth.login"), httponly=True,
        secure=current_app.config["SESSION_COOKIE_SECURE"], samesite="Lax")
    return response


def _password_accepted(user, device_id: str):
    """The password was right: sign in, or first ask for (or enrol) the second factor."""
    next_path = request.args.get("next")
    required = second_factor.required_for(user, current_app.config["REQUIRE_SECOND_FACTOR"])
    if not user.totp_secret and not required:
        return _complete_sign_in(user, device_id, next_path)
    session.clear()
    session[PENDING] = {"u": user.id, "n": user.session_nonce, "d": device_id,
                        "at": time.time(), "next": next_path}
    if user.totp_secret:
        return redirect(url_for("auth.code"), 303)
    # The secret itself waits on the server: this cookie is signed, not encrypted.
    session[PENDING]["enrol"] = True
    return redirect(url_for("auth.enrol"), 303)


def _pending_user():
    """The user whose password was accepted in this browser moments ago, or None."""
    pending = session.get(PENDING)
    if not pending or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        return None, None
    user = get_session().get(User, pending["u"])
    if user is None or not user.active or user.session_nonce != pending["n"]:
        return None, None
    return user, pending


def _code_refused(user, form, template: str, status: int = 401, **context):
    """A wrong code counts as a failed sign-in on the account and the address."""
    now = _now() or utcnow()
    throttle.record_failure(get_session().get_bind(),
                            {throttle.account_key(user.email): throttle.ACCOUNT,
                             throttle.address_key(request.remote_addr or "unknown"):
                                 throttle.ADDRESS}, now)
    form.code.errors.append("That code is not right (or was used already). Try the next one.")
    return make_response(render_template(template, form=form, **context), status)


def _throttled(user):
    conn = get_session().connection()
    until = throttle.blocked_until(
        conn, {throttle.account_key(user.email): throttle.ACCOUNT,
               throttle.address_key(request.remote_addr or "unknown"): throttle.ADDRESS},
        _now() or utcnow())
    get_session().rollback()
    return until


@bp.route("/login/code", methods=["GET", "POST"])
@public
def code():
    user, pending = _pending_user()
    if user is None:
        flash("Sign in again: the sign-in expired.", "error")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if form.validate_on_submit():
        until = _throttled(user)
        if until is not None:
            wait = until - (_now() or utcnow())
            flash(throttled_message(wait), "error")
            return make_response(render_template("auth/code.html", form=form), 429,
                                 {"Retry-After": str(math.ceil(wait.total_seconds()))})
        if second_factor.accept_code(get_session(), user.id, user.totp_secret, form.code.data,
                                     _now()):
            return _complete_sign_in(user, pending["d"], pending.get("next"))
        return _code_refused(user, form, "auth/code.html")
    status = 400 if request.method == "POST" else 200
    return make_response(render_template("auth/code.html", form=form), status)


@bp.route("/login/enrol", methods=["GET", "POST"])
@public
def enrol():
    """Each visit shows a new key, once; the code typed is checked against the key kept on
    the server for this account (app.auth.second_factor)."""
    user, pending = _pending_user()
    if user is None or not pending.get("enrol") or user.totp_secret:
        flash("Sign in again: the sign-in expired.", "error")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if form.validate_on_submit():
        try:
            second_factor.enrol(get_session(), user.id, form.code.data,
                                Actor(f"web:{user.email}", user.id, user.role), _now())
        except ValidationFailed:
            return _code_refused(user, form, "auth/enrol.html")
        flash("Second factor set up: from now on you sign in with a code from your app.",
              "success")
        return _complete_sign_in(user, pending["d"], pending.get("next"))
    if request.method == "POST":
        return make_response(render_template("auth/enrol.html", form=form), 400)
    secret = second_factor.start_enrolment(get_session(), user.id, _now())
    uri = second_factor.enrolment_uri(user.email, secret)
    response = make_response(render_template(
        "auth/enrol.html", form=form, secret=secret, qr=second_factor.qr_svg(uri), uri=uri))
    response.headers["Cache-Control"] = "no-store"  # the key is shown once, not kept
    return response


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

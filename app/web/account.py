"""Your own account: change your password, set up, move or remove a second factor; and the
public page a one-time link (invitation or reset, app.auth.links) opens to set a password.

Whoever holds a signed-in browser is not necessarily its owner. Changing the password
takes the current one; setting up a second factor takes the password too, and moving or
removing one also takes a code from the factor in use, so a session taken over cannot
swap the factor for the taker's own. Wrong passwords and codes here count as failed
sign-ins on the account and the client address (app.auth.throttle): this page is no way
around sign-in's limits for guessing the password.
"""

from __future__ import annotations

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
from flask_login import current_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from app.auth import links, second_factor, throttle
from app.auth.login import throttled_message
from app.auth.passwords import verify_password
from app.auth.roles import READ
from app.db import get_session
from app.errors import NotAllowed, ValidationFailed
from app.web.access import public, role_required, web_actor
from models import User, utcnow

bp = Blueprint("account", __name__, url_prefix="/account")


def _new_password_fields():
    new = PasswordField("New password", validators=[
        DataRequired(), Length(min=links.MIN_PASSWORD, max=links.MAX_PASSWORD)],
        description=f"At least {links.MIN_PASSWORD} characters.")
    again = PasswordField("New password again", validators=[
        DataRequired(), EqualTo("new_password", message="the two passwords differ")])
    return new, again


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired(),
                                                                      Length(max=200)])
    new_password, new_password_again = _new_password_fields()


class SetPasswordForm(FlaskForm):
    new_password, new_password_again = _new_password_fields()


def _code_field(label: str) -> StringField:
    return StringField(label, validators=[DataRequired(), Length(min=6, max=8)])


def _current_password_field() -> PasswordField:
    return PasswordField("Your password", validators=[DataRequired(), Length(max=200)])


class EnrolForm(FlaskForm):
    current_password = _current_password_field()
    code = _code_field("Code from the app you are setting up")


class ReplaceForm(EnrolForm):
    current_code = _code_field("Code from the app you use now")


class RemoveForm(FlaskForm):
    current_password = _current_password_field()
    current_code = _code_field("Code from your authenticator app")


def _me() -> User:
    return get_session().get(User, current_user.user_id)


def _now():
    clock = current_app.config.get("CLOCK")  # tests move time without sleeping
    return clock() if clock else utcnow()


def _required(user: User) -> bool:
    return second_factor.required_for(user, current_app.config["REQUIRE_SECOND_FACTOR"])


def _page(form: PasswordForm | None = None, status: int = 200,
          remove_form: RemoveForm | None = None):
    user = _me()
    return make_response(render_template(
        "account/index.html", user=user, form=form or PasswordForm(),
        remove_form=remove_form or RemoveForm(formdata=None, prefix="remove"),
        second_factor_required=_required(user)), status)


def _limits(user: User) -> dict:
    return {throttle.account_key(user.email): throttle.ACCOUNT,
            throttle.address_key(request.remote_addr or "unknown"): throttle.ADDRESS}


def _blocked(user: User):
    """The end of a running sign-in block on the account or this address, or None."""
    db = get_session()
    until = throttle.blocked_until(db.connection(), _limits(user), _now())
    db.rollback()
    return until


def _count_failure(user: User) -> None:
    throttle.record_failure(get_session().get_bind(), _limits(user), _now())


def _check_password(user: User, field) -> bool:
    """The account's password, checked and counted like a sign-in attempt."""
    if verify_password(user.password_hash, field.data):
        return True
    _count_failure(user)
    field.errors.append("that is not your password")
    return False


def _check_current_code(user: User, field) -> bool:
    """A code from the factor in use, spent once accepted; a wrong one counts as a failed
    sign-in."""
    if second_factor.accept_code(get_session(), user.id, user.totp_secret, field.data, _now()):
        return True
    _count_failure(user)
    field.errors.append("that code is not right (or was used already)")
    return False


@bp.get("")
@role_required(READ)
def index():
    return _page()


@bp.post("/password")
@role_required(READ)
def change_password():
    form = PasswordForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    user = _me()
    until = _blocked(user)
    if until is not None:
        form.current_password.errors.append(throttled_message(until - _now()))
        return _page(form, 429)
    if not verify_password(user.password_hash, form.current_password.data):
        _count_failure(user)
        form.current_password.errors.append("that is not your current password")
        return _page(form, 400)
    try:
        links.set_password(get_session(), user.id, form.new_password.data, web_actor())
    except ValidationFailed as error:
        form.new_password.errors.extend(error.errors.get("password", []))
        return _page(form, 400)
    # Every session ended with the change, this one too: sign in with the new password.
    logout_user()
    session.clear()
    flash("Password changed. Sign in with your new password; your other sessions have ended.",
          "success")
    return redirect(url_for("auth.login"), 303)


def _setup_page(form, status: int = 200, secret: str | None = None):
    user = _me()
    context = {}
    if secret is not None:
        uri = second_factor.enrolment_uri(user.email, secret)
        context = {"secret": secret, "qr": second_factor.qr_svg(uri)}
    response = make_response(render_template(
        "account/second_factor.html", form=form, replacing=user.totp_secret is not None,
        **context), status)
    response.headers["Cache-Control"] = "no-store"  # the key is shown once, not kept
    return response


@bp.route("/second-factor", methods=["GET", "POST"])
@role_required(READ)
def second_factor_setup():
    """Set up a second factor, or move it to another app. Each visit shows a new key once
    (kept on the server, never in the cookie); confirming takes the password, the new app's
    code, and, to replace a factor, a code from the one in use."""
    user = _me()
    replacing = user.totp_secret is not None
    form = ReplaceForm() if replacing else EnrolForm()
    if request.method == "GET":
        return _setup_page(form, secret=second_factor.start_enrolment(get_session(), user.id,
                                                                      _now()))
    if not form.validate_on_submit():
        return _setup_page(form, 400)
    until = _blocked(user)
    if until is not None:
        form.current_password.errors.append(throttled_message(until - _now()))
        return _setup_page(form, 429)
    if not _check_password(user, form.current_password):
        return _setup_page(form, 400)
    pending = second_factor.pending_secret(user, _now())
    if pending is None:
        form.code.errors.append("The key shown for setting up expired or was replaced: "
                                "start again.")
        return _setup_page(form, 400)
    # The new app's code first, unspent: a typo there must not use up the old app's code.
    if second_factor.matching_step(pending, form.code.data, _now()) is None:
        form.code.errors.append("That code is not right. Try the next one.")
        return _setup_page(form, 400)
    if replacing and not _check_current_code(user, form.current_code):
        return _setup_page(form, 400)
    try:
        second_factor.enrol(get_session(), user.id, form.code.data, web_actor(), _now(),
                            replace=replacing)
    except ValidationFailed as error:
        form.code.errors.extend(error.errors.get("code", []))
        return _setup_page(form, 400)
    flash("Second factor moved: your old app's codes no longer work." if replacing else
          "Second factor set up: from now on you sign in with a code from your app.",
          "success")
    return redirect(url_for("account.index"), 303)


@bp.post("/second-factor/remove")
@role_required(READ)
def remove_second_factor():
    user = _me()
    form = RemoveForm(prefix="remove")
    if not form.validate_on_submit():
        return _page(status=400, remove_form=form)
    if user.totp_secret is None or _required(user):
        raise NotAllowed("reviewers and admins must have a second factor: move it to "
                         "another app instead" if _required(user) else
                         "this account has no second factor")
    until = _blocked(user)
    if until is not None:
        form.current_password.errors.append(throttled_message(until - _now()))
        return _page(status=429, remove_form=form)
    if not (_check_password(user, form.current_password)
            and _check_current_code(user, form.current_code)):
        return _page(status=400, remove_form=form)
    second_factor.remove(get_session(), user.id, web_actor(), required=False)
    flash("Second factor removed: you sign in with your password alone.", "success")
    return redirect(url_for("account.index"), 303)


@bp.route("/link/<secret>", methods=["GET", "POST"])
@public
def use_link(secret: str):
    """An invitation or reset link: set your password. Anyone holding the link may, once."""
    db = get_session()
    link = links.open_link(db, secret)
    if link is None:
        return make_response(render_template("account/link_invalid.html"), 404)
    user = db.get(User, link.user_id)
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            links.use_link(db, secret, form.new_password.data)
        except NotAllowed:
            return make_response(render_template("account/link_invalid.html"), 404)
        except ValidationFailed as error:
            form.new_password.errors.extend(error.errors.get("password", []))
        else:
            logout_user()
            session.clear()
            flash("Your password is set. Sign in with it.", "success")
            return redirect(url_for("auth.login"), 303)
    status = 400 if form.is_submitted() else 200
    response = make_response(render_template("account/set_password.html", form=form,
                                             email=user.email, purpose=link.purpose), status)
    # The link is a secret: not into caches, not into another site's Referer.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response

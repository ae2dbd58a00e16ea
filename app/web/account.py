"""Your own account: change your password, set up a second factor; and the public page a
one-time link (invitation or reset, app.auth.links) opens to set a password."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    session,
    url_for,
)
from flask_login import current_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from app.auth import links, second_factor
from app.auth.passwords import verify_password
from app.auth.roles import READ
from app.db import get_session
from app.errors import NotAllowed, ValidationFailed
from app.web.access import public, role_required, web_actor
from models import User

bp = Blueprint("account", __name__, url_prefix="/account")

ENROLLING = "second_factor_enrolling"


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


class CodeForm(FlaskForm):
    code = StringField("Code from your authenticator app",
                       validators=[DataRequired(), Length(min=6, max=8)])


def _me() -> User:
    return get_session().get(User, current_user.user_id)


def _page(form: PasswordForm | None = None, status: int = 200):
    user = _me()
    required = second_factor.required_for(user, current_app.config["REQUIRE_SECOND_FACTOR"])
    return make_response(render_template(
        "account/index.html", user=user, form=form or PasswordForm(),
        second_factor_required=required), status)


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
    if not verify_password(user.password_hash, form.current_password.data):
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


@bp.route("/second-factor", methods=["GET", "POST"])
@role_required(READ)
def second_factor_setup():
    user = _me()
    secret = session.get(ENROLLING) or second_factor.new_secret()
    session[ENROLLING] = secret
    uri = second_factor.enrolment_uri(user.email, secret)
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        try:
            second_factor.enrol(get_session(), user.id, secret, form.code.data, web_actor())
        except ValidationFailed:
            form.code.errors.append("That code is not right. Try the next one.")
            status = 400
        else:
            session.pop(ENROLLING, None)
            flash("Second factor set up: from now on you sign in with a code from your app.",
                  "success")
            return redirect(url_for("account.index"), 303)
    elif form.is_submitted():
        status = 400
    return make_response(render_template(
        "account/second_factor.html", form=form, secret=secret, uri=uri,
        qr=second_factor.qr_svg(uri), replacing=user.totp_secret is not None), status)


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

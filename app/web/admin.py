"""Administration: users and their roles, API tokens, and the independence policy's versions."""

from __future__ import annotations

import copy
from decimal import Decimal

from flask import Blueprint, current_app, flash, g, redirect, render_template, url_for
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import aliased
from wtforms import DecimalField, EmailField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, ValidationError

from app.auth import throttle
from app.auth.links import invite_user, reset_link
from app.auth.roles import PERMISSIONS
from app.auth.users import (
    change_role,
    create_token,
    deactivate_user,
    reactivate_user,
    revoke_token,
    tokens_of,
    unblock_sign_in,
)
from app.db import get_session
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.extensions import state
from app.http_errors import answer_for
from app.ledger import changes
from app.ledger.approvers import REVIEWING_ROLES
from app.mail import MailError, build_message, mail_settings, send
from app.web.access import get_or_404, role_required
from models import ROLES, ApiToken, PolicyVersion, User, utcnow
from policies.document import OUTCOMES, RULE_IDS
from policies.rules import RULES

bp = Blueprint("admin", __name__, url_prefix="/staff/admin")

ADMIN = "admin"

#: What each rule is about, for the policy form.
RULE_LABELS = {rule.id: rule.form_label for rule in RULES}


def _role_permissions() -> dict[str, list[str]]:
    return {role: sorted(p for p, roles in PERMISSIONS.items() if role in roles) for role in ROLES}


# --- forms ----------------------------------------------------------------------------------

class ConfirmForm(FlaskForm):
    """A button that changes something: carries only the CSRF token."""


class UserForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False),
                                            Length(max=320)])
    role = SelectField("Role", choices=[SelectChoice(r) for r in ROLES], default="viewer")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice(r) for r in ROLES])


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[DataRequired(), Length(max=100)], default="api",
                       description="What the token is for, e.g. “accounting sync”.")


def _percent(field_name: str):
    def check(form, field):
        value = field.data
        if value is None:
            return
        if not Decimal(0) < value < Decimal(100):
            raise ValidationError("must be more than 0 and less than 100")
        if -value.as_tuple().exponent > 4:
            raise ValidationError("at most 4 decimal places")

    check.__name__ = f"check_{field_name}"
    return check


class PolicyForm(FlaskForm):
    version = StringField("New version name", validators=[DataRequired(), Length(max=50)],
                          description="Required and new: decisions record the version that made them.")
    cap = DecimalField("Lab-employee cap (%)", places=None,
                       validators=[InputRequired(), _percent("cap")],
                       description="Lab-employee money must stay strictly below this share of funding.")
    warning = DecimalField("Warning level (%)", places=None,
                           validators=[InputRequired(), _percent("warning")])
    window_days = IntegerField("Window (days)", validators=[InputRequired(), NumberRange(1, 3660)])
    cooling_off_days = IntegerField("Cooling-off (days)",
                                    validators=[InputRequired(), NumberRange(1, 3660)])

    def validate_version(self, field):
        name = (field.data or "").strip()
        if "\x00" in name:
            raise ValidationError("must not contain NUL characters")
        clash = get_session().execute(
            select(PolicyVersion.id).where(PolicyVersion.version == name)
        ).scalar_one_or_none()
        if clash is not None or name == state().policy.version:
            raise ValidationError("this version exists; choose a new version name")

    def validate_warning(self, field):
        if field.data is not None and self.cap.data is not None and field.data > self.cap.data:
            raise ValidationError("must not exceed the cap")


for _rule in RULE_IDS:
    setattr(PolicyForm, f"outcome_{_rule}",
            SelectField(RULE_LABELS[_rule], choices=[SelectChoice(o) for o in OUTCOMES]))


def _fraction_text(percent: Decimal) -> str:
    return f"{(percent / 100).normalize():f}"


def _percent_value(fraction: Decimal) -> Decimal:
    # Through text, so 0.50 shows as "50", not normalize()'s "5E+1".
    return Decimal(f"{(fraction * 100).normalize():f}")


# --- users ----------------------------------------------------------------------------------

def _users():
    active_tokens = (
        select(ApiToken.user_id, func.count(ApiToken.id).label("n"))
        .where(ApiToken.revoked_at.is_(None)).group_by(ApiToken.user_id).subquery()
    )
    return get_session().execute(
        select(User, func.coalesce(active_tokens.c.n, 0))
        .outerjoin(active_tokens, active_tokens.c.user_id == User.id)
        .order_by(User.active.desc(), User.email)
    ).all()


def _index_page(user_form: UserForm, status: int = 200):
    session = get_session()
    st = state()
    stored = session.execute(select(func.count(PolicyVersion.id))).scalar_one()
    return render_template("admin/index.html", users=_users(), user_form=user_form,
                           policy=st.policy_for(session), policy_stored=stored > 0,
                           permissions=_role_permissions()), status


@bp.get("/")
@role_required(ADMIN)
def index():
    return _index_page(UserForm())


@bp.post("/users")
@role_required(ADMIN)
def create_user_view():
    """Invite a user: the account is made without a password, and a one-time link lets the
    person choose theirs (app.auth.links). The admin never knows it."""
    form = UserForm()
    if not form.validate_on_submit():
        return _index_page(form, 400)
    try:
        user, secret = invite_user(get_session(), form.email.data, form.role.data, g.actor)
    except ValidationFailed as error:
        for message in error.errors.get("email", []) + error.errors.get("role", []):
            form.email.errors.append(message)
        return _index_page(form, 400)
    link = url_for("account.use_link", secret=secret, _external=True)
    if _mail_link(user, link, "invite"):
        flash(f"{user.email} is invited as {user.role}: the link to set a password is "
              "e-mailed to them.", "success")
        return redirect(url_for("admin.user", user_id=user.id), 303)
    # No mail server: the admin passes the link on. Whoever uses it sets the password,
    # once; the invitee who finds it used knows someone else did.
    return _user_page(get_or_404(User, user.id), new_link=link)


def _mail_link(user: User, link: str, purpose: str) -> bool:
    """E-mail the link to the user's own address; False when mail is off."""
    settings = mail_settings(current_app.config)
    if settings is None:
        return False
    org = current_app.config["ORG_NAME"]
    if purpose == "invite":
        subject = f"Your {org} staff account"
        body = (f"You are invited to {org}'s Arm's Length staff app as {user.role}.\n\n"
                f"Choose your password here (the link works once, for 7 days):\n{link}\n")
    else:
        subject = f"Reset your {org} staff password"
        body = (f"A password reset was asked for your account ({user.email}).\n\n"
                f"Choose a new password here (the link works once, for 24 hours):\n{link}\n\n"
                "If you did not expect this, tell an admin; your password is unchanged.\n")
    send(settings, build_message(settings.sender, user.email, subject, body))
    return True


@bp.post("/users/<int:user_id>/reset-link")
@role_required(ADMIN)
def send_reset_link(user_id: int):
    """E-mail the user a link to choose a new password. Never shown to the admin: with it,
    the admin could sign in as the user (and be a second reviewer)."""
    target = get_or_404(User, user_id)
    if not ConfirmForm().validate_on_submit():
        return _user_page(target, error="The form expired; try again.", status=400)
    if mail_settings(current_app.config) is None:
        return _user_page(target, status=409, error=(
            "Mail is not set up, so no reset link can be sent. Someone with access to the "
            f"server can set a new password with: armslength reset-password {target.email}"))
    try:
        user, secret = reset_link(get_session(), user_id, g.actor)
    except (NotAllowed, NotFound) as error:
        return _refused(user_id, error)
    try:
        _mail_link(user, url_for("account.use_link", secret=secret, _external=True), "reset")
    except MailError as error:
        return _user_page(target, status=502, error=f"The reset link could not be e-mailed: {error}")
    flash(f"A password reset link is e-mailed to {user.email}.", "success")
    return redirect(url_for("admin.user", user_id=user_id), 303)


def _user_page(user: User, *, new_token: str | None = None, new_link: str | None = None,
               error: str | None = None,
               status: int = 200, token_form: TokenForm | None = None,
               role_form: RoleForm | None = None):
    session = get_session()
    tokens = tokens_of(session, user.id)
    failures, blocked_until = throttle.failures_of(session.connection(),
                                                   throttle.account_key(user.email))
    if blocked_until is not None and blocked_until <= (current_app.config.get("CLOCK") or utcnow)():
        blocked_until = None
    response = render_template(
        "admin/user.html", user=user, tokens=tokens, new_token=new_token, new_link=new_link,
        error=error, mail_on=mail_settings(current_app.config) is not None,
        role_form=role_form or RoleForm(role=user.role), token_form=token_form or TokenForm(),
        confirm=ConfirmForm(), is_self=user.id == g.actor.user_id,
        sign_in_failures=failures, sign_in_blocked_until=blocked_until,
    )
    headers = {"Cache-Control": "no-store"} if new_token or new_link else {}
    return response, status, headers


@bp.get("/users/<int:user_id>")
@role_required(ADMIN)
def user(user_id: int):
    return _user_page(get_or_404(User, user_id))


@bp.post("/users/<int:user_id>/role")
@role_required(ADMIN)
def set_role(user_id: int):
    target = get_or_404(User, user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        return _user_page(target, role_form=form, status=400)
    try:
        change_role(get_session(), user_id, form.role.data, g.actor)
    except NotAllowed as error:
        return _refused(user_id, error)
    flash(f"{target.email} now has the role {form.role.data}.", "success")
    return redirect(url_for("admin.user", user_id=user_id), 303)


@bp.post("/users/<int:user_id>/deactivate")
@role_required(ADMIN)
def deactivate(user_id: int):
    return _set_active(user_id, deactivate_user, "deactivated: signed out everywhere, tokens revoked")


@bp.post("/users/<int:user_id>/reactivate")
@role_required(ADMIN)
def reactivate(user_id: int):
    return _set_active(user_id, reactivate_user, "reactivated")


@bp.post("/users/<int:user_id>/unblock-sign-in")
@role_required(ADMIN)
def unblock(user_id: int):
    return _set_active(user_id, unblock_sign_in,
                       "can sign in again from any browser: failed attempts forgotten")


def _refused(user_id: int, error: Exception):
    """The user's page again, with the refusal's message and status (app.http_errors)."""
    answer = answer_for(error)
    return _user_page(get_or_404(User, user_id), error=answer.message, status=answer.status)


def _set_active(user_id: int, service, done: str):
    target = get_or_404(User, user_id)
    if not ConfirmForm().validate_on_submit():
        return _user_page(target, error="The form expired; try again.", status=400)
    try:
        service(get_session(), user_id, g.actor)
    except NotAllowed as error:
        return _refused(user_id, error)
    flash(f"{target.email} {done}.", "success")
    return redirect(url_for("admin.user", user_id=user_id), 303)


# --- tokens ---------------------------------------------------------------------------------

@bp.post("/users/<int:user_id>/tokens")
@role_required(ADMIN)
def create_token_view(user_id: int):
    target = get_or_404(User, user_id)
    form = TokenForm()
    if not form.validate_on_submit():
        return _user_page(target, token_form=form, status=400)
    if not target.active:
        return _user_page(target, error="The user is inactive; reactivate them first.", status=409)
    if target.id != g.actor.user_id and target.role in REVIEWING_ROLES:
        # With a reviewer's token an admin could approve their own override as that reviewer.
        return _user_page(target, status=403, error=(
            f"A {target.role}'s API tokens are made by that {target.role} (or on the server "
            f"with armslength create-token), not by another admin."))
    token = create_token(get_session(), target.email, g.actor, name=form.name.data.strip())
    # Rendered into this response only: the token is never stored, and a redirect would
    # have to carry it through the (readable) session cookie.
    return _user_page(get_or_404(User, user_id), new_token=token, token_form=TokenForm(formdata=None))


@bp.post("/tokens/<int:token_id>/revoke")
@role_required(ADMIN)
def revoke(token_id: int):
    record = get_or_404(ApiToken, token_id)
    owner = get_or_404(User, record.user_id)
    if not ConfirmForm().validate_on_submit():
        return _user_page(owner, error="The form expired; try again.", status=400)
    try:
        revoke_token(get_session(), token_id, g.actor)
    except (NotAllowed, NotFound) as error:
        return _refused(owner.id, error)
    flash(f"Token “{record.name}” revoked; it no longer works.", "success")
    return redirect(url_for("admin.user", user_id=owner.id), 303)


# --- policy ---------------------------------------------------------------------------------

def _versions():
    creator = aliased(User)
    return get_session().execute(
        select(PolicyVersion.id, PolicyVersion.version, PolicyVersion.source,
               PolicyVersion.created_at, creator.email)
        .outerjoin(creator, creator.id == PolicyVersion.created_by_id)
        .order_by(PolicyVersion.id.desc())
    ).all()


def _policy_page(form: PolicyForm, status: int = 200):
    session = get_session()
    st = state()
    versions = _versions()
    return render_template("admin/policy.html", form=form, policy=st.policy_for(session),
                           versions=versions, rule_labels=RULE_LABELS,
                           proposed=[c for c in changes.changes_in_state(
                               session, "pending", policy=st.policy_for(session))
                               if c.kind == "policy_version"],
                           outcome_fields=[form[f"outcome_{r}"] for r in RULE_IDS]), status


def _prefilled(policy) -> PolicyForm:
    data = {"cap": _percent_value(policy.cap), "warning": _percent_value(policy.warning),
            "window_days": policy.window_days, "cooling_off_days": policy.cooling_off_days}
    data.update({f"outcome_{rule}": policy.outcomes[rule] for rule in RULE_IDS})
    return PolicyForm(data=data)


@bp.get("/policy")
@role_required(ADMIN)
def policy():
    return _policy_page(_prefilled(state().policy_for(get_session())))


@bp.post("/policy")
@role_required(ADMIN)
def save_policy():
    session = get_session()
    st = state()
    form = PolicyForm()
    if not form.validate_on_submit():
        return _policy_page(form, 400)
    # Start from the document in force, so sections this form does not edit (the
    # public statements, the name) carry over unchanged into the new version.
    document = copy.deepcopy(st.policies.current_document(session))
    document["version"] = form.version.data.strip()
    document["effective_from"] = st.today().isoformat()
    share = document.setdefault("lab_employee_share", {})
    share["cap"] = _fraction_text(form.cap.data)
    share["warning"] = _fraction_text(form.warning.data)
    share["window_days"] = form.window_days.data
    document.setdefault("affiliation", {})["cooling_off_days"] = form.cooling_off_days.data
    document["outcomes"] = {rule: form[f"outcome_{rule}"].data for rule in RULE_IDS}
    try:
        change = changes.propose_policy_version(session, document, g.actor,
                                                st.policy_for(session))
    except ValidationFailed as error:
        for field_name, messages in error.errors.items():
            target = form.version if field_name == "version" else None
            if target is not None:
                target.errors = list(target.errors) + messages
            else:
                flash("; ".join(messages), "error")
        return _policy_page(form, 400)
    # A new version waits for a second person; the change page replays the last year under it.
    flash(f"Policy version {document['version']} is proposed as change #{change.id}. It decides "
          "nothing until a second person (a reviewer or admin) approves it; it takes effect on "
          "the day of approval.", "warning")
    return redirect(url_for("changes.detail", change_id=change.id), 303)


@bp.get("/policy/versions/<int:version_id>")
@role_required(ADMIN)
def policy_version(version_id: int):
    row = get_or_404(PolicyVersion, version_id)
    newest = get_session().execute(select(func.max(PolicyVersion.id))).scalar_one()
    return render_template("admin/policy_version.html", row=row, active=row.id == newest)

"""Sign-in state and role checks for the staff pages. Deny by default."""

from __future__ import annotations

from functools import wraps

from flask import abort, current_app, g
from flask_login import LoginManager, UserMixin, current_user

from app.auth import second_factor
from app.auth.roles import allowed
from app.db import get_session
from app.ledger.audit import Actor
from models import User

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.session_protection = "strong"


class StaffUser(UserMixin):
    """What the request knows about the signed-in user."""

    def __init__(self, user: User):
        self.user_id = user.id
        self.email = user.email
        self.role = user.role
        self._nonce = user.session_nonce

    def get_id(self) -> str:
        # Includes the nonce, so rotating it at sign-out invalidates old cookies.
        return f"{self.user_id}:{self._nonce}"

    def can(self, permission: str) -> bool:
        return allowed(self.role, permission)


@login_manager.user_loader
def _load_user(identity: str) -> StaffUser | None:
    user_id, _, nonce = identity.partition(":")
    if not user_id.isdigit():
        return None
    user = get_session().get(User, int(user_id))
    if user is None or not user.active or user.session_nonce != nonce:
        return None
    if user.totp_secret is None and second_factor.required_for(
            user, current_app.config["REQUIRE_SECOND_FACTOR"]):
        # Given a reviewing role since signing in: sign in again, with a second factor.
        return None
    return StaffUser(user)


def web_actor() -> Actor:
    return Actor(f"web:{current_user.email}", current_user.user_id, current_user.role)


def role_required(permission: str):
    """Sign-in first (redirect to the login page), then the role (403)."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.can(permission):
                abort(403)
            g.actor = web_actor()
            return view(*args, **kwargs)

        wrapper.required_permission = permission
        return wrapper

    return decorator


def public(view):
    """Mark a page as open to anyone (sign-in, donate, published disclosures)."""
    view.public = True
    return view


def get_or_404(model, ident: int):
    obj = get_session().get(model, ident)
    if obj is None:
        abort(404)
    return obj

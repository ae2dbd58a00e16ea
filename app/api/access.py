"""Bearer-token authentication, role checks and body parsing for the JSON API."""

from __future__ import annotations

from functools import wraps
from typing import TypeVar

from flask import g, request
from pydantic import BaseModel, ValidationError

from app.auth.roles import allowed
from app.auth.users import token_holder
from app.db import get_session
from app.ledger.audit import Actor
from models.schemas import field_errors, iso_date

M = TypeVar("M", bound=BaseModel)

#: Ids are INTEGER columns (PostgreSQL int4); a larger id names no record.
MAX_ID = 2**31 - 1


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: dict | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict:
        data: dict = {"error": self.message}
        if self.errors:
            data["errors"] = self.errors
        return data


def _authenticate():
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    holder = token_holder(get_session(), token.strip())
    if holder is None:
        raise ApiError(401, "invalid or revoked token",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    g.api_token_id = holder.token_id  # the scope of idempotency keys (app.api.idempotency)
    return holder


def require(permission: str):
    """Authenticate first (401), then check the role (403), then run the view."""

    def decorator(view):
        view.required_permission = permission

        @wraps(view)
        def wrapper(*args, **kwargs):
            user = _authenticate()
            if not allowed(user.role, permission):
                raise ApiError(403, f"role {user.role!r} may not do this ({permission})")
            g.api_user = user
            g.actor = Actor(label=f"api:{user.email}", user_id=user.id, role=user.role)
            for value in kwargs.values():
                if isinstance(value, int) and value > MAX_ID:  # the database could not even look
                    raise ApiError(404, f"no record has id {value}")
            return view(*args, **kwargs)

        wrapper.required_permission = permission
        return wrapper

    return decorator


def parse_body(model: type[M]) -> M:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(422, "invalid input", {"body": ["must be a JSON object"]})
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ApiError(422, "invalid input", field_errors(error)) from None


def query_date(name: str, default):
    value = request.args.get(name)
    if value is None:
        return default
    try:
        return iso_date(value)
    except ValueError as error:
        raise ApiError(422, "invalid input", {name: [str(error)]}) from None


def query_int(name: str, default: int | None, low: int, high: int) -> int | None:
    value = request.args.get(name)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise ApiError(422, "invalid input", {name: [f"must be a whole number {low}..{high}"]})
    return int(value)


def query_text(name: str) -> str | None:
    """A free-text query parameter, stripped; text a database cannot store is a 422."""
    value = request.args.get(name)
    if value is None:
        return None
    if "\x00" in value:
        raise ApiError(422, "invalid input", {name: ["must not contain NUL characters"]})
    return value.strip()


def query_choice(name: str, choices) -> str | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if value not in choices:
        raise ApiError(422, "invalid input", {name: [f"must be one of: {', '.join(choices)}"]})
    return value


def optional_note(key: str = "note") -> str | None:
    """The optional {"note": "..."} (or {"public_note": "..."}) body of approve/decline.
    No body is fine."""
    data = request.get_json(silent=True)
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid input", {"body": ["must be a JSON object"]})
    note = data.get(key)
    if note is not None and not isinstance(note, str):
        raise ApiError(422, "invalid input", {key: ["must be a string"]})
    if note is not None and "\x00" in note:
        raise ApiError(422, "invalid input", {key: ["must not contain NUL characters"]})
    return note

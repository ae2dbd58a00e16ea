"""Bearer-token authentication, role checks and body parsing for the JSON API."""

from __future__ import annotations

from functools import wraps
from typing import TypeVar

from flask import g, request
from pydantic import BaseModel, ValidationError

from app.auth.roles import allowed
from app.auth.users import user_for_token
from app.db import get_session
from app.ledger.audit import Actor
from models.schemas import field_errors, iso_date

M = TypeVar("M", bound=BaseModel)


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
    user = user_for_token(get_session(), token.strip())
    if user is None:
        raise ApiError(401, "invalid or revoked token",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return user


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


def query_int(name: str, default: int, low: int, high: int) -> int:
    value = request.args.get(name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise ApiError(422, "invalid input", {name: [f"must be a whole number {low}..{high}"]})
    return int(value)

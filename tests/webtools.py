"""Helpers for staff-page tests: sign in as a role, and post forms with their CSRF token."""

from __future__ import annotations

import re

from app.auth.users import create_user
from app.ledger.audit import Actor
from models.schemas import UserCreate

PASSWORD = "long enough password"
_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_token(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "page has no CSRF token"
    return match.group(1) or match.group(2)


def make_user(app, email: str, role: str) -> int:
    with app.extensions["armslength"].sessions() as session:
        user = create_user(session, UserCreate(email=email, role=role, password=PASSWORD),
                           Actor("test", role="admin"))
        return user.id


def sign_in(client, email: str, password: str = PASSWORD):
    page = client.get("/login")
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": csrf_token(page.get_data(as_text=True))})


def submit(client, page_path: str, data: dict, action: str | None = None, **kw):
    """GET the page to obtain a CSRF token, then POST the form (to `action` or the page)."""
    page = client.get(page_path)
    assert page.status_code == 200, (page_path, page.status_code)
    token = csrf_token(page.get_data(as_text=True))
    return client.post(action or page_path, data={**data, "csrf_token": token}, **kw)

"""Every page of the app, walked from app.url_map: who may open it, and in what order it refuses.

For each route (except static files, the JSON API, which tests/api covers, and the Stripe
webhook, which is checked by its signature instead of a session):

* a public view (@public) must be on PUBLIC below, so a new public page is a deliberate,
  reviewed change;
* any other view must carry a permission (@role_required) that roles.py knows, and
  - anonymous requests are sent to the sign-in page (302 to /login), even with a valid
    CSRF token and even when the object in the URL does not exist;
  - every role lacking the permission gets 403, even when the object does not exist
    (auth, then role, then lookup: a refused role learns nothing about what exists);
  - an allowed role gets past the role check (200, or 404 for the missing object 1);
* every form POST is refused without its CSRF token (400) for a user who may use it.

URL parameters are filled with 1 in an empty ledger, so "object 1" never exists.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import create_engine
from werkzeug.routing import Rule

import models
from app import create_app
from app.auth.roles import PERMISSIONS, allowed
from app.db.locking import ensure_lock_row
from app.web.nav import NAV
from models import ROLES
from tests.conftest import BACKENDS, _truncate_postgres
from tests.webtools import csrf_token, make_user, session_token, sign_in

#: Views anyone may open without signing in. Adding a public page means adding it here.
PUBLIC = {
    "web.index",
    "web.favicon",
    "auth.login",
    "auth.logout",
    # The second step of a sign-in: they act only for the account whose password this
    # browser gave moments ago (a signed session value), and ask for its code.
    "auth.code",
    "auth.enrol",
    # A one-time invitation or reset link: the secret in the address is the credential.
    "account.use_link",
    "donate.donate",
    "donate.thanks",
    "donate.cancelled",
    "disclosures.index",
    "disclosures.view",
    "disclosures.view_json",
    "disclosures.view_signed_json",
    "disclosures.view_markdown",
    "disclosures.view_pdf",
    "disclosures.changes",
    "funding.index",
    "funding.view",
    "funding.view_json",
    "funding.view_signed_json",
    "funding.view_csv",
    "funding.view_pdf",
    "funding.charts_css",
}

#: Views that check a stronger permission for one method inside the view (GET shows a
#: letter to any staff role; POST sends it, which is fundraising work).
METHOD_PERMISSIONS = {
    ("acknowledgements.gift", "POST"): "gifts.write",
    ("acknowledgements.annual", "POST"): "gifts.write",
}

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
SKIPPED_METHODS = {"HEAD", "OPTIONS"}
SECRET = "test-secret-key-not-for-production"


def _excluded(rule: Rule) -> bool:
    return (rule.endpoint == "static"
            or rule.endpoint.startswith("api.")  # bearer-token JSON API: tests/api
            or rule.endpoint == "webhooks.stripe_webhook")  # Stripe's signature, not a session


def _url_map_app():
    """An app only for reading its routes at collection time (never connects)."""
    return create_app({"DATABASE_URL": "sqlite://", "TESTING": True, "SECRET_KEY": SECRET})


_APP = _url_map_app()
RULES = sorted((r for r in _APP.url_map.iter_rules() if not _excluded(r)), key=lambda r: r.rule)
VIEWS = _APP.view_functions


def _methods(rule: Rule) -> list[str]:
    return sorted(rule.methods - SKIPPED_METHODS)


def _url(rule: Rule) -> str:
    adapter = _APP.url_map.bind("localhost")
    return adapter.build(rule.endpoint, {name: 1 for name in rule.arguments}, method=_methods(rule)[0])


def _is_public(endpoint: str) -> bool:
    return bool(getattr(VIEWS[endpoint], "public", False))


def _strength(role: str) -> int:
    return sum(role in roles for roles in PERMISSIONS.values())


def _weakest(roles) -> str | None:
    """The role with the fewest permissions (ties: the earlier one in ROLES)."""
    ordered = sorted(roles, key=lambda r: (_strength(r), ROLES.index(r)))
    return ordered[0] if ordered else None


def _permission(endpoint: str, method: str) -> str:
    return METHOD_PERMISSIONS.get((endpoint, method), VIEWS[endpoint].required_permission)


#: (endpoint, method, url) for every checked route and method.
CASES = [(r.endpoint, m, _url(r)) for r in RULES for m in _methods(r)]
PROTECTED = [c for c in CASES if not _is_public(c[0])]
FORM_POSTS = [c for c in CASES if c[1] in UNSAFE]


def _ids(cases):
    return [f"{endpoint}-{method}" for endpoint, method, _ in cases]


# --- one app per backend for the whole walk: every request here is refused or only reads -------

class Walk:
    def __init__(self, app):
        self.app = app
        self.anonymous = app.test_client()
        self.clients = {}
        self.tokens = {}
        for role in ROLES:
            email = f"walk-{role}@example.org"
            make_user(app, email, role)
            client = app.test_client()
            assert sign_in(client, email).status_code == 302
            home = client.get("/staff/")
            assert home.status_code == 200, (role, home.status_code)
            self.clients[role] = client
            self.tokens[role] = session_token(home.get_data(as_text=True))
        self.anonymous_token = csrf_token(self.anonymous.get("/login").get_data(as_text=True))


@pytest.fixture(scope="module", params=BACKENDS)
def walk(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('route-walk') / 'walk.sqlite3'}"
        engine = create_engine(url)
        models.metadata.create_all(engine)
        engine.dispose()
    else:
        url = request.getfixturevalue("postgres_url")
        _truncate_postgres(url)
    app = create_app({"DATABASE_URL": url, "TESTING": True, "SECRET_KEY": SECRET,
                      "ORG_TIMEZONE": "UTC"})
    with app.app_context():
        with app.extensions["armslength"].sessions() as session:
            ensure_lock_row(session)
    yield Walk(app)
    app.extensions["armslength"].engine.dispose()


def _send(client, method: str, url: str, token: str | None = None):
    data = {"csrf_token": token} if token else {}
    if method in UNSAFE:
        return client.open(url, method=method, data=data)
    return client.open(url, method=method)


def _to_login(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


# --- the declarations ------------------------------------------------------------------------

def test_the_walk_found_the_staff_pages():
    endpoints = {endpoint for endpoint, _, _ in CASES}
    assert {"staff.home", "gifts.new", "review.decide", "imports.upload", "exports.gifts",
            "admin.index"} <= endpoints
    assert not any(e.startswith("api.") for e in endpoints)


def test_public_pages_are_exactly_the_acknowledged_ones():
    public = {endpoint for endpoint in VIEWS if _is_public(endpoint)}
    assert public == PUBLIC, (
        f"new public views: {sorted(public - PUBLIC)}; no longer public: {sorted(PUBLIC - public)}")


def test_every_excluded_route_is_static_the_api_or_the_webhook():
    excluded = {r.endpoint for r in _APP.url_map.iter_rules() if _excluded(r)}
    assert not {e for e in excluded if _is_public(e)}
    assert {e for e in excluded if not e.startswith("api.")} == {"static", "webhooks.stripe_webhook"}


@pytest.mark.parametrize("endpoint", sorted({e for e, _, _ in PROTECTED}))
def test_every_other_page_declares_a_known_permission(endpoint):
    permission = getattr(VIEWS[endpoint], "required_permission", None)
    assert permission is not None, f"{endpoint} is neither @public nor @role_required"
    assert permission in PERMISSIONS, f"{endpoint} requires {permission!r}, which no role has"


def test_the_navigation_links_need_the_same_permission_as_their_pages():
    for label, endpoint, permission in NAV:
        if endpoint in VIEWS:
            assert VIEWS[endpoint].required_permission == permission, label


# --- the behaviour ---------------------------------------------------------------------------

@pytest.mark.parametrize(("endpoint", "method", "url"), PROTECTED, ids=_ids(PROTECTED))
def test_anonymous_is_sent_to_sign_in(walk, endpoint, method, url):
    response = _send(walk.anonymous, method, url, walk.anonymous_token)
    assert _to_login(response), (response.status_code, response.headers.get("Location"))
    if method in UNSAFE:  # and without a token the request never gets that far
        assert _send(walk.anonymous, method, url).status_code == 400


@pytest.mark.parametrize(("endpoint", "method", "url"), PROTECTED, ids=_ids(PROTECTED))
def test_roles_without_the_permission_are_refused_before_any_lookup(walk, endpoint, method, url):
    permission = _permission(endpoint, method)
    lacking = [role for role in ROLES if not allowed(role, permission)]
    if not lacking:
        assert permission == "read", permission  # every staff role reads
        return
    weakest = _weakest(lacking)
    response = _send(walk.clients[weakest], method, url, walk.tokens[weakest])
    assert response.status_code == 403, (weakest, response.status_code)
    for role in lacking:  # the others too: the check is per role, and cheap
        assert _send(walk.clients[role], method, url, walk.tokens[role]).status_code == 403, role


@pytest.mark.parametrize(("endpoint", "method", "url"), PROTECTED, ids=_ids(PROTECTED))
def test_allowed_roles_get_past_the_role_check(walk, endpoint, method, url):
    permission = _permission(endpoint, method)
    role = _weakest([r for r in ROLES if allowed(r, permission)])
    client = walk.clients[role]
    if method in UNSAFE:
        # Without the CSRF token: refused before the view runs (nothing written).
        assert _send(client, method, url).status_code == 400, role
        return
    response = _send(client, method, url)
    assert response.status_code not in (401, 403), (role, response.status_code)
    assert not _to_login(response), role
    # 200; 404 for the missing object 1; 302 or 422 where a page needs query parameters.
    assert response.status_code in (200, 302, 404, 422), (role, response.status_code)
    if "1" not in re.split(r"[/.]", url):
        assert response.status_code != 404, (role, "a page without an id is missing")


@pytest.mark.parametrize(("endpoint", "method", "url"), FORM_POSTS, ids=_ids(FORM_POSTS))
def test_form_posts_without_a_csrf_token_are_refused(walk, endpoint, method, url):
    if _is_public(endpoint):
        client = walk.anonymous
    else:
        client = walk.clients[_weakest([r for r in ROLES if allowed(r, _permission(endpoint, method))])]
    response = _send(client, method, url)
    assert response.status_code == 400, response.status_code
    assert b"CSRF" in response.data

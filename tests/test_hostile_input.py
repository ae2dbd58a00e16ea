"""Hostile values in every route's parameters and fields never make a 500.

Walked from app.url_map (as tests/test_route_access.py does), on a small ledger so that
id 1 of each kind of record exists:

* every GET route gets hostile values in the query parameters its view reads (found in its
  source), in the fields of the GET forms its page shows, and in a fixed set of common
  names, signed in as an administrator and anonymously (the JSON API with a bearer token);
* every form a page shows (method post) is submitted with its own CSRF token and a hostile
  value in each field in turn, the other fields keeping the page's own values; every POST
  route also gets the common names with hostile values;
* every JSON API write gets hostile values in each common field, NUL characters, and a
  deeply nested body.

Hostile: NUL characters (PostgreSQL cannot store them), numbers beyond any column or Python
date, dates at and beyond the calendar's ends. The answer may be any 2xx, 3xx or 4xx.
"""

from __future__ import annotations

import inspect
import re

import pytest
from sqlalchemy import create_engine
from werkzeug.routing import Rule

import models
from app import create_app
from app.auth.users import create_token, create_user
from app.db.locking import ensure_lock_row
from app.ledger.audit import Actor
from models.schemas import UserCreate
from tests.builders import World, affiliate, gift, ok
from tests.conftest import BACKENDS, _truncate_postgres
from tests.webtools import csrf_token, make_user, page_forms, session_token, sign_in

SECRET = "test-secret-key-not-for-production"
HOSTILE = ["\x00", "a\x00b", "99999999999999999999999", "-99999999999999999999", "2147483648",
           "1e999", "9999-12-31", "99999-01-01", "0001-01-01"]
COMMON = ["page", "q", "limit", "offset", "id", "date", "from", "to", "as_of", "session_id",
          "status", "currency", "year", "month", "kind", "type", "donor_id", "gift_id",
          "organization_id", "pledge_id", "amount", "start", "end", "days", "next", "sort"]
#: Forms whose submission would end the walk's own sign-in.
SKIPPED_ACTIONS = ("/logout",)


def _rules(app) -> list[Rule]:
    return sorted((r for r in app.url_map.iter_rules()
                   if r.endpoint != "static" and r.endpoint != "webhooks.stripe_webhook"),
                  key=lambda r: r.rule)


def _url(app, rule: Rule, method: str) -> str:
    return app.url_map.bind("localhost").build(
        rule.endpoint, {name: 1 for name in rule.arguments}, method=method)


def _names_read(view) -> set[str]:
    """Query parameters and JSON fields a view's source names."""
    try:
        source = inspect.getsource(inspect.unwrap(view))
    except (OSError, TypeError):
        return set()
    return set(re.findall(r'(?:args\.get|query_\w+|args\[)\(?\s*"(\w+)"', source))


def _forms(html: str, page_path: str) -> list[dict]:
    """Each <form> of the page (tests.webtools.page_forms): method, action, and every named
    control with the page's value ("" for one left empty or unchecked), to fill each in turn."""
    return [{"method": form.method, "action": form.action,
             "fields": {name: form.fields.get(name, "") for name in sorted(form.names)}}
            for form in page_forms(html, page_path)]


class Walk:
    def __init__(self, app):
        self.app = app
        self.rules = _rules(app)
        with app.extensions["armslength"].sessions() as session:
            create_user(session, UserCreate(email="api-admin@example.org", role="admin",
                                            password="long enough password"), Actor("test", role="admin"))
            self.token = create_token(session, "api-admin@example.org", Actor("test", role="admin"))
        self.api_headers = {"Authorization": f"Bearer {self.token}"}
        make_user(app, "hostile-admin@example.org", "admin")
        self.anonymous = app.test_client()
        self.admin = app.test_client()
        self.sign_in()

    def sign_in(self):
        assert sign_in(self.admin, "hostile-admin@example.org").status_code == 302

    def seed(self):
        """Id 1 of the records the pages show, through the API."""
        client = self.app.test_client()

        class Api:
            def post(_, path, json=None):
                return client.post(f"/api/v1{path}", json=json, headers=self.api_headers)

            def get(_, path):
                return client.get(f"/api/v1{path}", headers=self.api_headers)

        api = Api()
        world = World(api)
        affiliate(api, world.donor["id"], world.other_org["id"])
        first = gift(api, world.donor["id"], "100.00", "2026-01-10")
        gift(api, world.lab_donor["id"], "50.00", "2026-01-11")  # held for review
        ok(api.post(f"/gifts/{first['id']}/refund", {"amount": "10.00", "refunded_on": "2026-01-12"}))
        ok(api.post("/pledges", {"donor_id": world.donor["id"], "amount": "300.00", "currency": "USD",
                                 "pledged_on": "2026-01-01", "instalments": [
                                     {"due_on": "2026-06-01", "amount": "300.00"}]}))
        ok(api.post("/in-kind", {"organization_id": world.lab["id"], "description": "Model access",
                                 "purpose": "evaluation", "start_date": "2026-01-01"}))


@pytest.fixture(scope="module", params=BACKENDS)
def walk(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'walk.sqlite3'}"
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
    walk = Walk(app)
    walk.seed()
    yield walk
    app.extensions["armslength"].engine.dispose()


def _no_500(response, what) -> None:
    assert response.status_code < 500, (what, response.status_code)


def _get_routes(walk):
    for rule in walk.rules:
        if "GET" in rule.methods:
            yield rule, _url(walk.app, rule, "GET")


def test_hostile_query_parameters(walk):
    failures = []
    for rule, url in _get_routes(walk):
        api = rule.endpoint.startswith("api.")
        names = _names_read(walk.app.view_functions[rule.endpoint])
        page = walk.admin.get(url, headers=walk.api_headers if api else {})
        if page.status_code == 200 and page.mimetype == "text/html":
            for form in _forms(page.get_data(as_text=True), url):
                if form["method"] == "get":
                    names |= set(form["fields"])
        clients = [(walk.admin, walk.api_headers if api else {})]
        if not api:
            clients.append((walk.anonymous, {}))
        for client, headers in clients:
            for value in HOSTILE:
                requests = [{name: value} for name in sorted(names)]
                requests.append({name: value for name in COMMON})
                for query in requests:
                    response = client.get(url, query_string=query, headers=headers)
                    response.close()  # a streamed export holds its request context until closed
                    if response.status_code >= 500:
                        failures.append((url, query, response.status_code))
    assert not failures, "\n".join(map(repr, failures))


def _post_forms(walk):
    """(action, fields) of every post form shown on a GET page, once each."""
    seen = set()
    for rule, url in _get_routes(walk):
        if rule.endpoint.startswith("api."):
            continue
        page = walk.admin.get(url)
        if page.status_code != 200 or page.mimetype != "text/html":
            continue
        for form in _forms(page.get_data(as_text=True), url):
            action = form["action"]
            key = (action, tuple(sorted(form["fields"])))
            if form["method"] != "post" or key in seen or action.startswith(SKIPPED_ACTIONS):
                continue
            seen.add(key)
            yield url, action, form["fields"]


def test_hostile_form_fields(walk):
    failures = []
    forms = list(_post_forms(walk))
    assert len(forms) > 20, [f[1] for f in forms]
    for page_url, action, fields in forms:
        for name in fields:
            if name == "csrf_token":
                continue
            for value in HOSTILE:
                page = walk.admin.get(page_url)
                if page.status_code == 302:  # a form that changed the walk's own account
                    walk.sign_in()
                    page = walk.admin.get(page_url)
                # The session's token: an earlier hostile value may have changed the record
                # so that the page no longer offers this form; what is tested is no 500.
                token = session_token(page.get_data(as_text=True))
                response = walk.admin.post(action, data={**fields, name: value, "csrf_token": token})
                response.close()
                if response.status_code >= 500:
                    failures.append((action, name, repr(value), response.status_code))
    assert not failures, "\n".join(map(repr, failures))


def test_hostile_fields_on_every_post_route(walk):
    failures = []
    for rule in walk.rules:
        if "POST" not in rule.methods:
            continue
        url = _url(walk.app, rule, "POST")
        if url.startswith(SKIPPED_ACTIONS):
            continue
        api = rule.endpoint.startswith("api.")
        for value in HOSTILE:
            if api:
                bodies = [{name: value for name in COMMON}]
                bodies += [{name: value} for name in sorted(_names_read(
                    walk.app.view_functions[rule.endpoint]))]
                for body in bodies:
                    response = walk.admin.post(url, json=body, headers=walk.api_headers)
                    response.close()
                    if response.status_code >= 500:
                        failures.append((url, body, response.status_code))
                continue
            token = csrf_token(walk.anonymous.get("/login").get_data(as_text=True))
            for client in (walk.admin, walk.anonymous):
                if client is walk.admin:
                    token = session_token(walk.admin.get("/staff/").get_data(as_text=True))
                data = {name: value for name in COMMON} | {"csrf_token": token}
                response = client.post(url, data=data)
                response.close()
                if response.status_code >= 500:
                    failures.append((url, repr(value), response.status_code))
    assert not failures, "\n".join(map(repr, failures))


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 50_000 + "1" + "}" * 50_000,
    '{"donor_id": 1, "amount": "1.00", "currency": "USD", "received_on": "2026-01-01", '
    '"description": ' + "[" * 100 + "1" + "]" * 100 + "}",
    '{"name": "Lab\\u0000", "covered_lab": false}',
    '{"\\u0000": 1}',
], ids=["deep-list", "deep-object", "nested-field", "nul-value", "nul-key"])
def test_hostile_json_bodies_on_every_api_write(walk, body):
    failures = []
    for rule in walk.rules:
        if not rule.endpoint.startswith("api."):
            continue
        for method in sorted(rule.methods & {"POST", "PUT"}):
            url = _url(walk.app, rule, method)
            response = walk.admin.open(url, method=method, data=body,
                                       content_type="application/json", headers=walk.api_headers)
            response.close()
            if response.status_code >= 500 or not response.is_json:
                failures.append((method, url, response.status_code))
            elif response.status_code < 400:
                failures.append((method, url, "accepted", response.get_json()))
    assert not failures, "\n".join(map(repr, failures))


# --- the cases the outside testers found, one by one (function-scoped app per backend) ---------

def test_a_nul_in_the_donate_thanks_session_id_is_a_400(client):
    response = client.get("/donate/thanks?session_id=%00")
    assert response.status_code == 400
    assert "session_id: must not contain NUL characters" in response.get_data(as_text=True)


def test_a_nul_in_a_staff_search_is_a_400(web_as):
    assert web_as("admin").get("/staff/donors/?q=a%00b").status_code == 400


def test_nul_and_deep_json_on_the_api_are_422_with_the_field(api):
    response = api.post("/organizations", {"name": "Lab\x00", "covered_lab": False})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"name": ["must not contain NUL characters"]}
    deep = api.client.post("/api/v1/gifts", data="[" * 100_000 + "]" * 100_000,
                           content_type="application/json", headers=api.headers)
    assert deep.status_code == 422
    assert deep.get_json()["errors"] == {"body": ["nests deeper than 32 levels"]}
    assert api.get("/donors?q=%00").status_code == 422


def test_a_multipart_field_name_that_is_not_text_is_a_4xx(api):
    """A part whose name is not valid UTF-8 (found by the API fuzz test on POST /rosters)
    reaches the checks as bytes: refused as input, never a 500."""
    body = (b"--x\r\nContent-Disposition: form-data; name=\"\xff\x00\xfe\"\r\n\r\nvalue\r\n"
            b"--x\r\nContent-Disposition: form-data; name=\"ok\"\r\n\r\n\xff\x00\r\n--x--\r\n")
    for path in ("/api/v1/rosters", "/api/v1/gifts"):
        response = api.client.post(path, data=body, headers={
            **api.headers, "Content-Type": "multipart/form-data; boundary=x"})
        assert 400 <= response.status_code < 500, (path, response.status_code)

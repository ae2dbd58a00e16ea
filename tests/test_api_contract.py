"""The JSON API's contract, checked from the server's own route table.

Every /api/v1 route declares a permission; the OpenAPI document lists exactly
the routes the server has, with the same permissions; authentication (401) and
the role check (403) come before anything else a request could fail on; the
OpenAPI document is valid 3.1; docs/api.md mentions every operation; unknown
paths and wrong methods answer in JSON. A route added without all of this fails
here, not in a client.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app import create_app
from app.api.openapi import openapi_document
from app.auth.roles import PERMISSIONS, allowed
from models.users import ROLES

PREFIX = "/api/v1"
OPENAPI_PATH = f"{PREFIX}/openapi.json"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "api.md"
IGNORED_METHODS = {"HEAD", "OPTIONS"}
#: A body every input model refuses (unknown field, required fields missing), and a
#: query string every validated parameter refuses: if the server looked at either
#: before checking the token and the role, the answer would be a 422, not 401/403.
PROBE_BODY = {"contract_probe": True}
PROBE_QUERY = "?limit=0&after_id=x&as_of=not-a-date&status=bogus&donor_id=x&covered_lab=maybe"
PLACEHOLDER = re.compile(r"<int:(\w+)>")

# The route table does not depend on the database: read it from an app whose
# engine is never connected.
_ROUTE_APP = create_app({"DATABASE_URL": "sqlite://", "TESTING": True,
                         "SECRET_KEY": "contract-test-secret-key-not-for-production"})


def _api_routes(app) -> list[tuple[str, str, str]]:
    """(METHOD, rule, endpoint) for every /api/v1 route except the public openapi.json."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/") or rule.rule == OPENAPI_PATH:
            continue
        for method in sorted(rule.methods - IGNORED_METHODS):
            routes.append((method, rule.rule, rule.endpoint))
    return sorted(routes)


API_ROUTES = _api_routes(_ROUTE_APP)
ROUTE_IDS = [f"{method} {rule}" for method, rule, _ in API_ROUTES]


def _permission(app, endpoint: str) -> str | None:
    return getattr(app.view_functions[endpoint], "required_permission", None)


def _openapi_path(rule: str) -> str:
    return PLACEHOLDER.sub("{id}", rule.removeprefix(PREFIX))


def _concrete(rule: str, ident: int = 1) -> str:
    return PLACEHOLDER.sub(str(ident), rule)


def _openapi_operations() -> dict[tuple[str, str], dict]:
    return {
        (method.upper(), path): operation
        for path, item in openapi_document()["paths"].items()
        for method, operation in item.items()
    }


def _send(client, method: str, rule: str, headers: dict | None = None, ident: int = 1):
    path = _concrete(rule, ident)
    if method == "GET":
        return client.get(path + PROBE_QUERY, headers=headers or {})
    return client.open(path, method=method, json=PROBE_BODY, headers=headers or {})


def _json_error(response) -> dict:
    assert response.is_json, (response.status_code, response.content_type, response.data[:200])
    body = response.get_json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body
    return body


# --- (a) every route declares its permission ----------------------------------------------

def test_the_route_table_is_not_empty():
    assert len(API_ROUTES) >= 20, API_ROUTES


@pytest.mark.parametrize(("method", "rule", "endpoint"), API_ROUTES, ids=ROUTE_IDS)
def test_every_api_route_declares_a_known_permission(method, rule, endpoint):
    permission = _permission(_ROUTE_APP, endpoint)
    assert permission, f"{method} {rule} ({endpoint}) has no @require(permission)"
    # Deny by default: a permission missing from the table would lock everyone out.
    assert permission in PERMISSIONS, f"{method} {rule}: unknown permission {permission!r}"
    assert PLACEHOLDER.sub("", rule).count("<") == 0, f"{rule}: only <int:...> path parameters"


def test_openapi_json_is_public_and_the_only_route_without_a_permission(client):
    for rule in _ROUTE_APP.url_map.iter_rules():
        if rule.rule.startswith(PREFIX + "/") and not _permission(_ROUTE_APP, rule.endpoint):
            assert rule.rule == OPENAPI_PATH, f"{rule.rule} has no permission"
    response = client.get(OPENAPI_PATH)
    assert response.status_code == 200
    assert response.get_json()["openapi"].startswith("3.1")


# --- (b) the OpenAPI document is the route table --------------------------------------------

def test_openapi_lists_exactly_the_api_routes():
    served = {(method, _openapi_path(rule)) for method, rule, _ in API_ROUTES}
    documented = set(_openapi_operations())
    assert documented - served == set(), "documented but not served"
    assert served - documented == set(), "served but missing from OPERATIONS in app/api/openapi.py"


@pytest.mark.parametrize(("method", "rule", "endpoint"), API_ROUTES, ids=ROUTE_IDS)
def test_openapi_names_the_permission_the_view_enforces(method, rule, endpoint):
    operation = _openapi_operations()[(method, _openapi_path(rule))]
    named = re.findall(r"Requires permission `([^`]+)`", operation.get("description", ""))
    assert named == [_permission(_ROUTE_APP, endpoint)], (operation.get("description"), endpoint)
    assert operation.get("security") == [{"bearer": []}]
    for code in ("401", "403"):
        assert code in operation["responses"], f"{method} {rule}: no {code} response documented"
    path_params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
    assert path_params == set(re.findall(r"\{(\w+)\}", _openapi_path(rule)))


def test_openapi_served_document_is_the_built_one(client):
    assert client.get(OPENAPI_PATH).get_json() == openapi_document()


# --- (c) 401 before 403 before everything else ----------------------------------------------

@pytest.fixture
def quick_users(monkeypatch):
    """These users sign in with tokens only: skip the deliberately slow password hash."""
    monkeypatch.setattr("app.auth.users.hash_password", lambda password: "not-a-password-hash")


@pytest.mark.parametrize(("method", "rule", "endpoint"), API_ROUTES, ids=ROUTE_IDS)
def test_auth_then_role_come_before_lookup_and_validation(quick_users, app, client, api_as, method, rule,
                                                          endpoint):
    permission = _permission(app, endpoint)

    for headers in ({}, {"Authorization": "Bearer al_not-a-real-token"},
                    {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = _send(client, method, rule, headers)
        assert response.status_code == 401, (method, rule, headers, response.status_code)
        _json_error(response)
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")

    # A route whose default answer needs a second permission besides its own (the Schedule
    # B staff copy: exports), and answers other roles only when asked for less.
    also = getattr(app.view_functions[endpoint], "default_also_requires", None)
    for role in ROLES:
        api = api_as(role)
        response = _send(client, method, rule, api.headers)
        if also is not None and allowed(role, permission) and not allowed(role, also):
            assert response.status_code == 403, (method, rule, role, response.status_code)
            assert also in _json_error(response)["error"]
        elif allowed(role, permission):
            # Past the gate: whatever the route says about id 1 and the probe, never
            # "who are you" or "not you", never a 500, and nothing is created.
            assert response.status_code not in (401, 403, 500, 201), (role, response.get_json())
            assert response.is_json, (role, response.status_code)
        else:
            assert response.status_code == 403, (method, rule, role, response.status_code)
            assert permission in _json_error(response)["error"]


def test_every_role_can_call_some_route_and_admin_can_call_all():
    for role in ROLES:
        assert any(allowed(role, _permission(_ROUTE_APP, e)) for _, _, e in API_ROUTES), role
    assert all(allowed("admin", _permission(_ROUTE_APP, e)) for _, _, e in API_ROUTES)


# --- (d) the OpenAPI document is valid 3.1 --------------------------------------------------

def test_openapi_document_is_valid_openapi_3_1():
    validator = pytest.importorskip("openapi_spec_validator")
    document = openapi_document()
    assert document["openapi"].startswith("3.1.")
    validator.validate(document)


# --- (e) the docs cannot fall behind ---------------------------------------------------------

def _docs_text() -> str:
    assert DOCS.exists(), "docs/api.md is missing"
    return DOCS.read_text(encoding="utf-8")


def _mention(method: str, path: str) -> re.Pattern:
    # "POST /api/v1/gifts" must not be satisfied by "POST /api/v1/gifts/preview".
    return re.compile(rf"\b{method} {re.escape(PREFIX + path)}(?![\w/{{}}.-])")


@pytest.mark.parametrize(("method", "path"), sorted(_openapi_operations()),
                         ids=[f"{m} {p}" for m, p in sorted(_openapi_operations())])
def test_docs_mention_every_operation(method, path):
    assert _mention(method, path).search(_docs_text()), (
        f"docs/api.md does not mention {method} {PREFIX}{path}"
    )


def test_docs_endpoint_sections_are_real_and_name_the_right_permission():
    operations = _openapi_operations()
    permissions = {(m, _openapi_path(r)): _permission(_ROUTE_APP, e) for m, r, e in API_ROUTES}
    text = _docs_text()
    heading = re.compile(r"^#{2,6} `(GET|POST|PUT|PATCH|DELETE) (/api/v1/[^`\s?]*)`\s*$", re.M)
    matches = list(heading.finditer(text))
    assert matches, "docs/api.md has no endpoint headings"
    seen = set()
    for i, match in enumerate(matches):
        method, full_path = match.group(1), match.group(2)
        section = text[match.end(): matches[i + 1].start() if i + 1 < len(matches) else len(text)]
        declared = re.search(r"Permission: (none|`([^`]+)`)", section)
        assert declared, f"docs/api.md: {method} {full_path} does not state its permission"
        if full_path == OPENAPI_PATH:
            assert declared.group(1).startswith("none")
            continue
        key = (method, full_path.removeprefix(PREFIX))
        assert key in operations, f"docs/api.md documents {method} {full_path}, which does not exist"
        assert declared.group(2) == permissions[key], (method, full_path, declared.group(0))
        seen.add(key)
    assert seen == set(operations), f"no section in docs/api.md for {set(operations) - seen}"


def test_docs_permission_table_matches_roles():
    text = _docs_text()
    for permission, roles in PERMISSIONS.items():
        row = re.search(rf"^\| `{re.escape(permission)}` \| ([^|]+) \|", text, re.M)
        assert row, f"docs/api.md: no row for permission {permission}"
        listed = {r.strip() for r in row.group(1).split(",")}
        assert listed == set(roles), (permission, listed, set(roles))


# --- (f) unknown paths and wrong methods answer in JSON --------------------------------------

@pytest.mark.parametrize("path", [
    f"{PREFIX}/does-not-exist", f"{PREFIX}/gifts/not-a-number", f"{PREFIX}/gifts/1/unknown",
    f"{PREFIX}/", PREFIX, "/api/v2/gifts",
])
def test_unknown_api_paths_are_json_404(client, api, path):
    for headers in ({}, api.headers):
        response = client.get(path, headers=headers)
        assert response.status_code == 404, (path, response.status_code)
        _json_error(response)


def test_wrong_methods_are_json_405_with_allow(client, api):
    by_rule: dict[str, set[str]] = {}
    for method, rule, _ in API_ROUTES:
        by_rule.setdefault(rule, set()).add(method)
    for rule, methods in by_rule.items():
        for wrong in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - methods):
            for headers in ({}, api.headers):
                response = client.open(_concrete(rule), method=wrong, headers=headers)
                assert response.status_code == 405, (wrong, rule, response.status_code)
                _json_error(response)
                allow = {m.strip() for m in response.headers.get("Allow", "").split(",")}
                assert methods <= allow, (wrong, rule, allow)


# --- never a 500 for bad input ----------------------------------------------------------------

@pytest.mark.parametrize(("method", "rule", "endpoint"),
                         [r for r in API_ROUTES if PLACEHOLDER.search(r[1])],
                         ids=[i for i, r in zip(ROUTE_IDS, API_ROUTES, strict=True)
                              if PLACEHOLDER.search(r[1])])
def test_ids_beyond_any_record_are_404_not_500(client, api, method, rule, endpoint):
    for ident in (2**31, 2**63, 10**30):
        response = _send(client, method, rule, api.headers, ident=ident)
        assert response.status_code == 404, (rule, ident, response.status_code)
        _json_error(response)


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("GET", "/donors?limit=%C2%B2", None, "limit"),  # "²" passes str.isdigit()
    ("GET", "/donors?after_id=99999999999999999999", None, "after_id"),
    ("GET", "/donors?q=a%00b", None, "q"),
    ("GET", "/gifts?donor_id=%C2%B2", None, "donor_id"),
    ("GET", "/gifts?donor_id=99999999999999999999", None, "donor_id"),
    ("GET", "/gifts?status=a%00b", None, "status"),
    ("GET", "/organizations?covered_lab=yes", None, "covered_lab"),
    ("GET", "/compliance/summary?as_of=9999-12-31", None, "request"),
    ("POST", "/gifts", {"donor_id": 10**30, "amount": "1.00", "currency": "USD",
                        "received_on": "2026-01-01"}, None),
    ("POST", "/organizations", {"name": "nul\u0000byte"}, None),
    ("POST", "/organizations", [{"name": "a list"}], "body"),
])
def test_bad_input_is_422_never_500(api, method, path, body, field):
    response = api.get(path) if method == "GET" else api.post(path, body)
    # A NUL byte is storable in SQLite, so that one may be accepted there.
    if body == {"name": "nul\u0000byte"} and response.status_code == 201:
        return
    assert response.status_code == 422, (path, response.status_code, response.get_json())
    error = _json_error(response)
    assert error["error"] == "invalid input" and error["errors"]
    if field is not None:
        assert field in error["errors"], error


@pytest.mark.parametrize("body", ["[1]", '"a note"', "7"])
def test_override_notes_must_be_an_object(api, body):
    from tests.builders import World, gift

    world = World(api)
    rejected = gift(api, world.lab_donor["id"], "100.00", "2026-03-01",
                    purpose="evaluation_services")
    assert rejected["status"] == "rejected"
    request_ = api.post(f"/gifts/{rejected['id']}/override",
                        {"outcome": "accept", "reason": "misclassified invoice"})
    assert request_.status_code == 201, request_.get_json()
    for action in ("approve", "decline"):
        response = api.client.post(f"{PREFIX}/overrides/{request_.get_json()['id']}/{action}",
                                   data=body, content_type="application/json", headers=api.headers)
        assert response.status_code == 422, (action, body, response.status_code)
        assert _json_error(response)["errors"] == {"body": ["must be a JSON object"]}

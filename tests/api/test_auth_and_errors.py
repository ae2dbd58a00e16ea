"""Authentication (401 first), roles (403) and unknown ids (404)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.auth.users import revoke_token
from app.ledger.audit import Actor
from models import ApiToken
from tests.api.helpers import gift_body, snapshot
from tests.builders import World

ROLES = ("viewer", "fundraiser", "reviewer", "finance", "admin")
EVERYONE = frozenset(ROLES)
MISSING = 999_999


def _raw(client, method, path, headers=None, **kw):
    return client.open(f"/api/v1{path}", method=method, headers=headers or {}, **kw)


# --- 401 -------------------------------------------------------------------------------

def test_request_without_authorization_header_is_401(client):
    response = _raw(client, "GET", "/gifts")
    assert response.status_code == 401
    assert response.get_json() == {"error": "missing bearer token"}
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_wrong_scheme_or_empty_token_is_401(client):
    for header in ["Basic YWRtaW46cGFzc3dvcmQ=", "Token al_abc", "Bearer", "Bearer   ", "bearer", ""]:
        response = _raw(client, "GET", "/gifts", {"Authorization": header})
        assert response.status_code == 401, header
        assert response.get_json() == {"error": "missing bearer token"}, header


def test_unknown_token_is_401(api, client):
    for token in ["al_not-a-real-token", "not-even-our-prefix", "al_" + "x" * 300, api.token + "x",
                  api.token[:-1]]:
        response = _raw(client, "GET", "/gifts", {"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert response.get_json() == {"error": "invalid or revoked token"}
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_bearer_scheme_is_case_insensitive(api, client):
    response = _raw(client, "GET", "/gifts", {"Authorization": f"bEaReR {api.token}"})
    assert response.status_code == 200


def test_revoked_token_is_401(api_as, client, db):
    fundraiser = api_as("fundraiser")
    assert fundraiser.get("/gifts").status_code == 200
    token_id = db.execute(
        select(ApiToken.id).where(ApiToken.user_id == fundraiser.user_id)).scalar_one()
    revoke_token(db, token_id, Actor("test", role="admin"))
    response = fundraiser.get("/gifts")
    assert response.status_code == 401
    assert response.get_json() == {"error": "invalid or revoked token"}


def test_401_is_checked_before_a_bad_body(client, db):
    before = snapshot(db)
    no_token = _raw(client, "POST", "/gifts", data="{not json", content_type="application/json")
    bad_token = _raw(client, "POST", "/gifts", {"Authorization": "Bearer al_nope"},
                     json={"amount": 5})
    assert (no_token.status_code, bad_token.status_code) == (401, 401)
    assert snapshot(db) == before


def test_401_is_checked_before_an_unknown_id(client):
    for method, path in [("GET", f"/gifts/{MISSING}"), ("GET", f"/donors/{MISSING}"),
                         ("GET", f"/pledges/{MISSING}"), ("POST", f"/gifts/{MISSING}/refund"),
                         ("POST", f"/gifts/{MISSING}/review"), ("POST", f"/overrides/{MISSING}/approve"),
                         ("PUT", f"/affiliations/{MISSING}")]:
        assert _raw(client, method, path, json={}).status_code == 401, path
        assert _raw(client, method, path, {"Authorization": "Bearer al_nope"},
                    json={}).status_code == 401, path


# --- 403 -------------------------------------------------------------------------------

def test_viewer_cannot_record_a_gift(api, api_as, db):
    w = World(api)
    viewer = api_as("viewer")
    before = snapshot(db)
    response = viewer.post("/gifts", gift_body(w.donor["id"]))
    assert response.status_code == 403
    assert response.get_json() == {"error": "role 'viewer' may not do this (gifts.write)"}
    assert snapshot(db) == before


def test_403_is_checked_before_a_bad_body_and_an_unknown_id(api_as):
    viewer = api_as("viewer")
    assert viewer.post("/gifts", {"amount": 12}).status_code == 403
    assert viewer.post(f"/gifts/{MISSING}/refund", {}).status_code == 403


#: (method, path, body, roles that may call it, status an allowed role gets).
#: Bodies are empty and ids unknown, so an allowed call stops at 422 or 404 and writes nothing.
ENDPOINTS = [
    ("GET", "/organizations", None, EVERYONE, 200),
    ("GET", f"/organizations/{MISSING}", None, EVERYONE, 404),
    ("GET", "/donors", None, EVERYONE, 200),
    ("GET", f"/donors/{MISSING}", None, EVERYONE, 404),
    ("GET", "/gifts", None, EVERYONE, 200),
    ("GET", f"/gifts/{MISSING}", None, EVERYONE, 404),
    ("GET", f"/pledges/{MISSING}", None, EVERYONE, 404),
    ("GET", "/in-kind", None, EVERYONE, 200),
    ("GET", "/compliance/summary", None, EVERYONE, 200),
    ("GET", "/audit/verify", None, EVERYONE, 200),
    ("POST", "/organizations", {}, {"fundraiser", "reviewer", "admin"}, 422),
    ("POST", "/donors", {}, {"fundraiser", "admin"}, 422),
    ("POST", f"/donors/{MISSING}/affiliations", {}, {"fundraiser", "reviewer", "admin"}, 404),
    ("PUT", f"/affiliations/{MISSING}", {}, {"fundraiser", "reviewer", "admin"}, 422),
    ("POST", "/gifts", {}, {"fundraiser", "admin"}, 422),
    ("POST", "/gifts/preview", {}, {"fundraiser", "admin"}, 422),
    ("POST", "/pledges", {}, {"fundraiser", "admin"}, 422),
    ("POST", "/in-kind", {}, {"fundraiser", "reviewer", "admin"}, 422),
    ("POST", f"/gifts/{MISSING}/refund", {}, {"finance", "admin"}, 404),
    ("POST", f"/gifts/{MISSING}/review", {}, {"reviewer", "admin"}, 404),
    ("POST", f"/gifts/{MISSING}/override", {}, {"reviewer", "admin"}, 404),
    ("POST", f"/overrides/{MISSING}/approve", {}, {"reviewer", "admin"}, 404),
    ("POST", f"/overrides/{MISSING}/decline", {}, {"reviewer", "admin"}, 404),
]


@pytest.mark.parametrize("role", ROLES)
def test_role_permissions_table(api_as, client, db, role):
    """Each role against every endpoint: allowed calls get past the role check, others 403."""
    user = api_as(role)
    before = snapshot(db)
    got, want = {}, {}
    for method, path, body, roles, allowed_status in ENDPOINTS:
        response = _raw(client, method, path, user.headers, json=body)
        got[f"{method} {path}"] = response.status_code
        want[f"{method} {path}"] = allowed_status if role in roles else 403
    assert got == want
    assert snapshot(db) == before


# --- 404 -------------------------------------------------------------------------------

NOT_FOUND = [
    ("GET", f"/gifts/{MISSING}", None),
    ("GET", f"/donors/{MISSING}", None),
    ("GET", f"/pledges/{MISSING}", None),
    ("GET", f"/organizations/{MISSING}", None),
    ("POST", f"/donors/{MISSING}/affiliations",
     {"organization_id": 1, "senior_decision_maker": False, "start_date": "2020-01-01"}),
    ("PUT", f"/affiliations/{MISSING}",
     {"organization_id": 1, "senior_decision_maker": False, "start_date": "2020-01-01"}),
    ("POST", f"/gifts/{MISSING}/refund", {"amount": "1.00", "refunded_on": "2026-01-01"}),
    ("POST", f"/gifts/{MISSING}/review", {"outcome": "accept", "reason": "fine by me"}),
    ("POST", f"/gifts/{MISSING}/override", {"outcome": "accept", "reason": "fine by me"}),
    ("POST", f"/overrides/{MISSING}/approve", {}),
    ("POST", f"/overrides/{MISSING}/decline", {}),
]


def test_unknown_id_in_the_path_is_404(api, db):
    World(api)  # organisation 1 exists, so the valid bodies are valid
    before = snapshot(db)
    for method, path, body in NOT_FOUND:
        response = _raw(api.client, method, path, api.headers, json=body)
        assert response.status_code == 404, (path, response.get_json())
        assert "not found" in response.get_json()["error"], path
    assert snapshot(db) == before


def test_non_numeric_or_huge_ids_are_404(api):
    for path in ("/gifts/abc", "/gifts/-1", "/gifts/1.5", f"/gifts/{2**63}", f"/donors/{10**30}"):
        assert api.get(path).status_code == 404, path

"""Administration: users and roles, API tokens, and new policy versions."""

from __future__ import annotations

import re
import tomllib
from datetime import date

import pytest
from sqlalchemy import select

from app.auth.users import change_role, deactivate_user, token_hash
from app.errors import NotAllowed
from app.ledger.audit import SYSTEM
from models import ApiToken, AuditEntry, Decision, PolicyVersion, User
from tests.builders import World, gift
from tests.webtools import csrf_token, make_user, post_refused, sign_in, submit

TOKEN = re.compile(r'<p class="secret" id="new-token">(al_[A-Za-z0-9_\-]+)</p>')


def _user_id(db, email: str) -> int:
    user_id = db.execute(select(User.id).where(User.email == email)).scalar_one()
    db.rollback()  # end the read transaction (PostgreSQL's driver opens one)
    return user_id


def _post(client, page: str, action: str, data: dict | None = None):
    return submit(client, page, data or {}, action=action)


# --- access ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/staff/admin/", "/staff/admin/policy", "/staff/admin/users/1"])
def test_anonymous_is_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("role", ["viewer", "fundraiser", "reviewer", "finance"])
def test_only_admins_may_open_admin(web_as, role):
    assert web_as(role).get("/staff/admin/").status_code == 403


@pytest.mark.parametrize("action", [
    "/staff/admin/users", "/staff/admin/users/1/role", "/staff/admin/users/1/deactivate",
    "/staff/admin/users/1/tokens", "/staff/admin/tokens/1/revoke", "/staff/admin/policy",
])
def test_viewer_posts_are_forbidden(web_as, db, action):
    viewer = web_as("viewer")
    # A valid CSRF token from a page the viewer may open: the refusal is the role's.
    response = post_refused(viewer, "/staff/", action, {"email": "x@example.org", "role": "admin",
                                                 "password": "long enough password"})
    assert response.status_code == 403
    assert db.execute(select(User).where(User.email == "x@example.org")).first() is None


# --- users ----------------------------------------------------------------------------------

INVITE_LINK = re.compile(r'<p class="secret" id="new-link">https?://[^/]+(/account/link/[^<]+)</p>')


def test_admin_invites_a_user_who_sets_their_own_password(app, web_as, db):
    admin = web_as("admin")
    page = _post(admin, "/staff/admin/", "/staff/admin/users",
                 {"email": "New.Person@Example.org", "role": "reviewer"})
    # No mail server in this app: the link is shown to the admin, once.
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    link = INVITE_LINK.search(page.get_data(as_text=True)).group(1)
    user = db.execute(select(User).where(User.email == "new.person@example.org")).scalar_one()
    assert user.role == "reviewer" and user.active
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "user.invited")
                       .order_by(AuditEntry.id.desc())).scalars().first()
    assert entry.entity_id == user.id and entry.actor == "web:web-admin@example.org"
    db.rollback()
    assert "new.person@example.org" in admin.get("/staff/admin/").get_data(as_text=True)
    invitee = app.test_client()
    # Before the link is used, no password the admin could guess works.
    assert sign_in(invitee, "new.person@example.org", "long enough password").status_code == 401
    done = submit(invitee, link, {"new_password": "my own secret words",
                                  "new_password_again": "my own secret words"})
    assert done.status_code == 303 and done.headers["Location"].endswith("/login")
    assert sign_in(invitee, "new.person@example.org", "my own secret words").status_code == 302
    # The link worked once.
    assert app.test_client().get(link).status_code == 404


def test_invite_form_errors(web_as):
    admin = web_as("admin")
    bad = _post(admin, "/staff/admin/", "/staff/admin/users",
                {"email": "not an address", "role": "viewer"})
    assert bad.status_code == 400
    _post(admin, "/staff/admin/", "/staff/admin/users", {"email": "dup@example.org", "role": "viewer"})
    again = _post(admin, "/staff/admin/", "/staff/admin/users",
                  {"email": "dup@example.org", "role": "viewer"})
    assert again.status_code == 400
    assert "a user with this email exists" in again.get_data(as_text=True)


def test_admin_changes_a_role_and_it_applies_at_once(app, web_as, db):
    admin = web_as("admin")
    viewer = web_as("viewer")
    viewer_id = _user_id(db, "web-viewer@example.org")
    assert viewer.get("/staff/admin/").status_code == 403
    page = f"/staff/admin/users/{viewer_id}"
    response = _post(admin, page, f"{page}/role", {"role": "admin"})
    assert response.status_code == 303
    assert viewer.get("/staff/admin/").status_code == 200  # no new sign-in needed
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "user.role_changed")
                       ).scalars().one()
    assert entry.data == {"email": "web-viewer@example.org", "from": "viewer", "to": "admin",
                          "revoked_token_ids": []}


def test_admin_cannot_demote_or_deactivate_themselves(web_as, db):
    admin = web_as("admin")
    me = _user_id(db, "web-admin@example.org")
    page = f"/staff/admin/users/{me}"
    assert "You cannot change your own role" in admin.get(page).get_data(as_text=True)
    # The page offers neither form; a forged post is refused all the same.
    demote = post_refused(admin, page, f"{page}/role", {"role": "viewer"})
    assert demote.status_code == 409
    assert "cannot remove your own admin role" in demote.get_data(as_text=True)
    deactivate = post_refused(admin, page, f"{page}/deactivate", {})
    assert deactivate.status_code == 409
    assert "cannot deactivate yourself" in deactivate.get_data(as_text=True)
    user = db.get(User, me)
    assert user.role == "admin" and user.active
    assert admin.get("/staff/admin/").status_code == 200


def test_deactivating_signs_the_user_out_and_revokes_their_tokens(app, web_as, api_as, db, client):
    admin = web_as("admin")
    fundraiser_web = web_as("fundraiser")
    fundraiser_api = api_as("fundraiser", name="web-fundraiser-api")
    target = fundraiser_api.user_id
    # The API user and the web user differ; deactivate the web one and check both paths
    # on the API user too.
    web_id = _user_id(db, "web-fundraiser@example.org")
    for user_id in (web_id, target):
        page = f"/staff/admin/users/{user_id}"
        assert _post(admin, page, f"{page}/deactivate").status_code == 303
    assert fundraiser_web.get("/staff/").status_code == 302  # signed out
    assert client.get("/api/v1/compliance/summary", headers=fundraiser_api.headers).status_code == 401
    revoked = db.execute(select(ApiToken).where(ApiToken.user_id == target)).scalars().all()
    assert revoked and all(t.revoked_at is not None for t in revoked)
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "user.deactivated",
                                                AuditEntry.entity_id == target)).scalars().one()
    assert entry.data["revoked_token_ids"] == [t.id for t in revoked]
    db.rollback()
    # Reactivated, they may sign in again; the old tokens stay dead.
    page = f"/staff/admin/users/{web_id}"
    assert _post(admin, page, f"{page}/reactivate").status_code == 303
    assert sign_in(app.test_client(), "web-fundraiser@example.org").status_code == 302


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(app):
    """Over the web the actor is always another active admin, so this guards the other
    doors (the command line, scripts): somebody must always be able to undo a change."""
    only = make_user(app, "only-admin@example.org", "admin")
    with app.extensions["armslength"].sessions() as session:
        with pytest.raises(NotAllowed, match="last active admin"):
            change_role(session, only, "viewer", SYSTEM)
        with pytest.raises(NotAllowed, match="last active admin"):
            deactivate_user(session, only, SYSTEM)
        second = make_user(app, "second-admin@example.org", "admin")
        assert change_role(session, only, "viewer", SYSTEM).role == "viewer"
        with pytest.raises(NotAllowed, match="last active admin"):
            deactivate_user(session, second, SYSTEM)


def test_an_admin_can_let_a_paused_account_sign_in_again_and_it_is_audited(app, web_as, db):
    admin = web_as("admin")
    target = make_user(app, "other-admin@example.org", "admin")  # admins are throttled too
    for _ in range(6):
        assert sign_in(app.test_client(), "other-admin@example.org", "a wrong guess!!").status_code == 401
    assert sign_in(app.test_client(), "other-admin@example.org").status_code == 429

    page = f"/staff/admin/users/{target}"
    html = admin.get(page).get_data(as_text=True)
    assert "6 counted; sign-in from new browsers paused until" in html
    assert _post(admin, page, f"{page}/unblock-sign-in").status_code == 303
    assert sign_in(app.test_client(), "other-admin@example.org").status_code == 302

    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "user.sign_in_unblocked")
                       ).scalar_one()
    assert (entry.entity_id, entry.actor, entry.data) == (
        target, "web:web-admin@example.org", {"email": "other-admin@example.org", "failures": 6})
    db.rollback()
    again = post_refused(admin, page, f"{page}/unblock-sign-in", {})  # no longer offered
    assert again.status_code == 409
    assert "no failed sign-ins are counted" in again.get_data(as_text=True)


# --- tokens ---------------------------------------------------------------------------------

def test_token_is_shown_once_stored_hashed_works_and_dies_when_revoked(app, web_as, db, client):
    admin = web_as("admin")
    user_id = make_user(app, "robot@example.org", "viewer")
    page = f"/staff/admin/users/{user_id}"
    created = _post(admin, page, f"{page}/tokens", {"name": "accounting sync"})
    assert created.status_code == 200
    assert created.headers["Cache-Control"] == "no-store"
    html = created.get_data(as_text=True)
    match = TOKEN.search(html)
    assert match, "the new token is on the page"
    token = match.group(1)
    assert "shown only this once" in html

    # Only the hash is stored, and the token never appears again.
    record = db.execute(select(ApiToken).where(ApiToken.user_id == user_id)).scalar_one()
    assert record.token_hash == token_hash(token) and record.name == "accounting sync"
    db.rollback()
    again = admin.get(page).get_data(as_text=True)
    assert token not in again and "accounting sync" in again and "active" in again

    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/compliance/summary", headers=headers).status_code == 200

    revoked = _post(admin, page, f"/staff/admin/tokens/{record.id}/revoke")
    assert revoked.status_code == 303
    response = client.get("/api/v1/compliance/summary", headers=headers)
    assert response.status_code == 401
    assert "revoked" in admin.get(page).get_data(as_text=True)
    # Revoking twice is refused, and does not move the revocation time.
    db.rollback()  # a fresh read: the revocation was committed by the request
    first = db.get(ApiToken, record.id).revoked_at
    assert first is not None
    db.rollback()
    twice = post_refused(admin, page, f"/staff/admin/tokens/{record.id}/revoke", {})
    assert twice.status_code == 409
    db.rollback()
    assert db.get(ApiToken, record.id).revoked_at == first
    actions = db.execute(select(AuditEntry.action).where(AuditEntry.entity_id == user_id,
                                                         AuditEntry.entity_type == "user")).scalars()
    assert {"token.created", "token.revoked"} <= set(actions)


def test_no_token_for_an_inactive_user(app, web_as):
    admin = web_as("admin")
    user_id = make_user(app, "gone@example.org", "viewer")
    page = f"/staff/admin/users/{user_id}"
    _post(admin, page, f"{page}/deactivate")
    refused = post_refused(admin, page, f"{page}/tokens", {"name": "x"})
    assert refused.status_code == 409
    assert TOKEN.search(refused.get_data(as_text=True)) is None


# --- policy ---------------------------------------------------------------------------------

def _policy_form(**changes) -> dict:
    data = {"version": "2027.1", "cap": "50", "warning": "40", "window_days": "365",
            "cooling_off_days": "365", "outcome_lab_evaluation_payment": "reject",
            "outcome_senior_decision_maker": "reject", "outcome_lab_employee_cap": "reject",
            "outcome_lab_corporate_money": "hold", "outcome_lab_in_kind": "accept",
            "outcome_large_gift": "hold"}
    data.update(changes)
    return data


def _approve_pending_version(web_as) -> None:
    """A second person (a reviewer) approves the proposed version in the review queue."""
    reviewer = web_as("reviewer")
    queue = reviewer.get("/staff/review/").get_data(as_text=True)
    change_id = re.search(r"Approve change #(\d+)", queue).group(1)
    response = submit(reviewer, "/staff/review/", {},
                      action=f"/staff/changes/{change_id}/approve")
    assert response.status_code == 303, response.get_data(as_text=True)


def _decision(db, gift_id: int) -> Decision:
    return db.execute(select(Decision).where(Decision.gift_id == gift_id)).scalars().one()


def test_policy_page_shows_the_version_in_force(web_as):
    html = web_as("admin").get("/staff/admin/policy").get_data(as_text=True)
    assert "In force: version 2026.4" in html
    assert 'value="50"' in html and 'value="40"' in html  # prefilled, in percent
    assert "None stored yet" in html


def test_new_policy_version_decides_new_gifts_and_old_decisions_keep_theirs(api, web_as, db):
    admin = web_as("admin")
    world = World(api)
    before = gift(api, world.donor["id"], "550.00", date(2025, 1, 10))
    assert before["decision"]["policy_version"] == "2026.4"

    response = submit(admin, "/staff/admin/policy", _policy_form(version="2026.4-strict", cap="40",
                                                                 warning="35"))
    assert response.status_code == 303
    _approve_pending_version(web_as)
    versions = db.execute(select(PolicyVersion).order_by(PolicyVersion.id)).scalars().all()
    assert [(v.version, v.source) for v in versions] == [("2026.4", "file"),
                                                         ("2026.4-strict", "admin")]
    assert 'cap = "0.4"' in versions[1].document and 'warning = "0.35"' in versions[1].document
    # The sections the form does not edit carry over (the file words no statement itself:
    # every rule is published with its own).
    stored = tomllib.loads(versions[1].document)
    shipped = tomllib.loads(versions[0].document)
    assert stored["name"] == shipped["name"] and stored["statements"] == shipped["statements"]
    assert stored["large_gift"] == shipped["large_gift"] == {"threshold_minor": 100_000_000}
    # The limit on listed possible matches (2026.4) is kept too: the form does not edit it.
    assert stored["possible_match"] == shipped["possible_match"]
    assert stored["possible_match"]["max_listed"] == 10
    db.rollback()

    # 450 of 1000 is 45%: under the old 50% cap it would pass; under the new 40% it may not.
    after = gift(api, world.employee["id"], "450.00", date(2025, 1, 11))
    assert after["status"] == "rejected"
    assert after["decision"]["policy_version"] == "2026.4-strict"
    assert _decision(db, before["id"]).policy_version == "2026.4"
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "policy.changed")).scalars().one()
    assert entry.data["version"] == "2026.4-strict" and entry.data["cap"] == "0.4"

    html = admin.get("/staff/admin/policy").get_data(as_text=True)
    assert "In force: version 2026.4-strict" in html
    assert html.index("2026.4-strict</a>") < html.index("2026.4</a>")
    listed = admin.get(f"/staff/admin/policy/versions/{versions[0].id}").get_data(as_text=True)
    assert 'cap = &#34;0.50&#34;' in listed


def test_policy_outcome_change_applies(api, web_as):
    admin = web_as("admin")
    world = World(api)
    assert submit(admin, "/staff/admin/policy",
                  _policy_form(version="2026.5", outcome_lab_corporate_money="reject")).status_code == 303
    _approve_pending_version(web_as)
    corporate = gift(api, world.lab_donor["id"], "1000.00", date(2025, 2, 1))
    assert corporate["status"] == "rejected"
    assert corporate["decision"]["policy_version"] == "2026.5"


@pytest.mark.parametrize(("changes", "message"), [
    ({"version": ""}, "This field is required."),
    ({"version": "2026.4"}, "this version exists; choose a new version name"),
    ({"cap": "100"}, "must be more than 0 and less than 100"),
    ({"cap": "0"}, "must be more than 0 and less than 100"),
    ({"warning": "60"}, "must not exceed the cap"),
    ({"window_days": "0"}, "Number must be between 1 and 3660."),
    ({"outcome_lab_employee_cap": "ignore"}, "Not a valid choice."),
])
def test_policy_form_refuses_bad_settings(web_as, db, changes, message):
    admin = web_as("admin")
    response = submit(admin, "/staff/admin/policy", _policy_form(**changes))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.execute(select(PolicyVersion)).first() is None


def test_a_version_name_is_never_reused(web_as, db):
    admin = web_as("admin")
    assert submit(admin, "/staff/admin/policy", _policy_form(version="v2")).status_code == 303
    _approve_pending_version(web_as)
    again = submit(admin, "/staff/admin/policy", _policy_form(version="v2", cap="45"))
    assert again.status_code == 400
    assert "this version exists" in again.get_data(as_text=True)
    assert len(db.execute(select(PolicyVersion)).all()) == 2  # the file's and v2


def test_csrf_is_required(web_as):
    admin = web_as("admin")
    page = admin.get("/staff/admin/")
    assert csrf_token(page.get_data(as_text=True))
    response = admin.post("/staff/admin/users", data={"email": "a@example.org", "role": "viewer",
                                                      "password": "long enough password"})
    assert response.status_code == 400

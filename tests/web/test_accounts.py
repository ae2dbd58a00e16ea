"""Two persons must really be two (issue 11 C): invitations instead of admin-chosen
passwords, a waiting time before a new reviewer may approve, a second factor for
reviewers and admins, changing and resetting passwords."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from app.config import ConfigError, load_settings
from models import ApiToken, AuditEntry, Gift, OverrideRequest, User, utcnow
from tests.builders import affiliate, gift, organization, person
from tests.ledger.test_acknowledgements import inbox  # noqa: F401 - a fixture
from tests.webtools import PASSWORD, establish, make_user, sign_in, submit

LINK = re.compile(r'<p class="secret" id="new-link">https?://[^/]+(/account/link/[^<]+)</p>')
SECRET = re.compile(r'<code class="totp-secret">([A-Z2-7]+)</code>')


def _invite(admin, email: str, role: str) -> str:
    page = submit(admin, "/staff/admin/", {"email": email, "role": role},
                  action="/staff/admin/users")
    assert page.status_code == 200, page.status_code
    return LINK.search(page.get_data(as_text=True)).group(1)


def _rejected_gift(api, db) -> int:
    """A lab's vice president, a senior decision-maker, gives $5,000: rejected."""
    lab = organization(api, "Halcyon Labs", covered_lab=True)
    senior = person(api, "Morgan Chen", "morgan@example.org")
    affiliate(api, senior["id"], lab["id"], senior=True, title="Vice President of Research")
    made = gift(api, senior["id"], "5000.00", utcnow().date())
    assert made["status"] == "rejected", made
    return made["id"]


# --- the insider's walk-around from issue 11 ---------------------------------------------------

def test_an_admin_cannot_approve_their_own_override_with_an_account_they_just_made(
        app, web_as, api_as, db):
    """An admin requests an override, makes a reviewer account, sets its password through
    the invitation link (no mail: shown to the admin), signs in as it and tries to approve."""
    admin_api = api_as("admin", name="insider")
    gift_id = _rejected_gift(admin_api, db)
    request = admin_api.post(f"/gifts/{gift_id}/override", {"outcome": "accept",
                                                             "reason": "trust me"})
    assert request.status_code == 201, request.get_json()
    request_id = request.get_json()["id"]

    admin = web_as("admin")
    link = _invite(admin, "sock.puppet@example.org", "reviewer")
    puppet = app.test_client()
    submit(puppet, link, {"new_password": "chosen by the admin", "new_password_again":
                          "chosen by the admin"})
    assert sign_in(puppet, "sock.puppet@example.org", "chosen by the admin").status_code == 302
    review_page = puppet.get("/staff/review/")
    assert review_page.status_code == 200
    approval = submit(puppet, "/staff/review/", {}, action=f"/staff/review/overrides/{request_id}/approve")
    assert approval.status_code == 409
    assert "less than 7 days" in approval.get_data(as_text=True)
    db.rollback()
    assert db.get(Gift, gift_id).status == "rejected"
    assert db.get(OverrideRequest, request_id).state == "pending"


def test_a_reviewer_of_long_standing_may_approve(api_as, db):
    requester = api_as("admin", name="requester")
    gift_id = _rejected_gift(requester, db)
    request_id = requester.post(f"/gifts/{gift_id}/override",
                                {"outcome": "accept", "reason": "board minute 12"}).get_json()["id"]
    reviewer = api_as("reviewer")  # the fixture's staff have held their role for a month
    done = reviewer.post(f"/overrides/{request_id}/approve", {"note": "checked"})
    assert done.status_code == 201, done.get_json()


def test_a_role_given_today_cannot_approve_and_loses_its_old_tokens(app, api_as, db, client):
    requester = api_as("admin", name="requester")
    gift_id = _rejected_gift(requester, db)
    request_id = requester.post(f"/gifts/{gift_id}/override",
                                {"outcome": "accept", "reason": "board minute 12"}).get_json()["id"]
    old_hand = api_as("fundraiser", name="old-hand")  # a fundraiser for a month
    from app.auth.users import change_role, create_token
    from app.ledger.audit import Actor

    change_role(db, old_hand.user_id, "reviewer", Actor("test", role="admin"))
    db.commit()
    # The token made while the account was a fundraiser no longer works.
    assert client.get("/api/v1/compliance/summary", headers=old_hand.headers).status_code == 401
    email = db.get(User, old_hand.user_id).email
    token = create_token(db, email, Actor("test", role="admin"))
    answer = client.post(f"/api/v1/overrides/{request_id}/approve", json={},
                         headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 409 and "less than 7 days" in answer.get_json()["error"]
    establish(db, old_hand.user_id, days=7)
    answer = client.post(f"/api/v1/overrides/{request_id}/approve", json={},
                         headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 201, answer.get_json()


def test_an_admin_cannot_make_api_tokens_for_a_reviewer(app, web_as, db):
    admin = web_as("admin")
    reviewer_id = make_user(app, "rev@example.org", "reviewer")
    fundraiser_id = make_user(app, "fund@example.org", "fundraiser")
    page = f"/staff/admin/users/{reviewer_id}"
    refused = submit(admin, page, {"name": "mine now"}, action=f"{page}/tokens")
    assert refused.status_code == 403
    assert db.execute(select(ApiToken).where(ApiToken.user_id == reviewer_id)).first() is None
    page = f"/staff/admin/users/{fundraiser_id}"
    assert submit(admin, page, {"name": "sync"}, action=f"{page}/tokens").status_code == 200


# --- second factor ---------------------------------------------------------------------------

def _enrol(client, email: str) -> tuple[str, str]:
    response = sign_in(client, email)
    assert response.status_code == 303 and response.headers["Location"].endswith("/login/enrol")
    page = client.get("/login/enrol").get_data(as_text=True)
    secret = SECRET.search(page).group(1)
    code = pyotp.TOTP(secret).now()
    done = submit(client, "/login/enrol", {"code": code})
    assert done.status_code == 302, done.status_code
    return secret, code


def test_a_reviewer_must_enrol_a_second_factor_and_then_give_codes(app, db):
    app.config["REQUIRE_SECOND_FACTOR"] = True
    make_user(app, "rev@example.org", "reviewer")
    client = app.test_client()
    assert client.get("/staff/review/").status_code == 302
    secret, enrolled_with = _enrol(client, "rev@example.org")
    assert client.get("/staff/review/").status_code == 200
    assert db.execute(select(AuditEntry).where(
        AuditEntry.action == "user.second_factor_enrolled")).scalars().one()
    client.post("/logout", data={"csrf_token": ""})

    again = app.test_client()
    step = sign_in(again, "rev@example.org")
    assert step.status_code == 303 and step.headers["Location"].endswith("/login/code")
    assert again.get("/staff/review/").status_code == 302  # the password alone is not enough
    wrong = submit(again, "/login/code", {"code": "000000" if pyotp.TOTP(secret).now() != "000000"
                                          else "111111"})
    assert wrong.status_code == 401
    # The code that enrolled was spent: typed again, it is refused (even within the minute
    # either side of its step that codes are accepted in).
    reused = submit(again, "/login/code", {"code": enrolled_with})
    assert reused.status_code == 401
    later = pyotp.TOTP(secret).at(utcnow() + timedelta(seconds=30))
    assert submit(again, "/login/code", {"code": later}).status_code == 302
    assert again.get("/staff/review/").status_code == 200


def test_a_viewer_needs_no_second_factor(app):
    app.config["REQUIRE_SECOND_FACTOR"] = True
    make_user(app, "view@example.org", "viewer")
    assert sign_in(app.test_client(), "view@example.org").status_code == 302


def test_a_user_given_a_reviewing_role_signs_in_again_with_a_second_factor(app, db):
    app.config["REQUIRE_SECOND_FACTOR"] = True
    user_id = make_user(app, "fund@example.org", "fundraiser")
    client = app.test_client()
    assert sign_in(client, "fund@example.org").status_code == 302
    from app.auth.users import change_role
    from app.ledger.audit import Actor

    change_role(db, user_id, "admin", Actor("test", role="admin"))
    db.commit()
    assert client.get("/staff/").status_code == 302  # signed out until enrolled


def test_production_cannot_turn_the_second_factor_off(tmp_path):
    settings = {"ARMSLENGTH_ENV": "production", "SECRET_KEY": "x" * 40}
    assert load_settings(settings, str(tmp_path))["REQUIRE_SECOND_FACTOR"] is True
    with pytest.raises(ConfigError, match="REQUIRE_SECOND_FACTOR"):
        load_settings({**settings, "REQUIRE_SECOND_FACTOR": "false"}, str(tmp_path))
    assert load_settings({}, str(tmp_path))["REQUIRE_SECOND_FACTOR"] is False


def test_anyone_may_set_up_a_second_factor_from_their_account(app, web_as, db):
    fundraiser = web_as("fundraiser")
    page = fundraiser.get("/account/second-factor").get_data(as_text=True)
    secret = SECRET.search(page).group(1)
    done = submit(fundraiser, "/account/second-factor", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 303
    user = db.execute(select(User).where(User.email == "web-fundraiser@example.org")).scalar_one()
    assert user.totp_secret == secret


# --- passwords ---------------------------------------------------------------------------------

def test_changing_your_password_ends_every_session(app, web_as):
    viewer = web_as("viewer")
    other = app.test_client()
    assert sign_in(other, "web-viewer@example.org").status_code == 302
    wrong = submit(viewer, "/account", {"current_password": "not it at all",
                                        "new_password": "a new long password",
                                        "new_password_again": "a new long password"},
                   action="/account/password")
    assert wrong.status_code == 400 and "not your current password" in wrong.get_data(as_text=True)
    done = submit(viewer, "/account", {"current_password": PASSWORD,
                                       "new_password": "a new long password",
                                       "new_password_again": "a new long password"},
                  action="/account/password")
    assert done.status_code == 303
    assert other.get("/staff/").status_code == 302
    assert sign_in(app.test_client(), "web-viewer@example.org", PASSWORD).status_code == 401
    assert sign_in(app.test_client(), "web-viewer@example.org",
                   "a new long password").status_code == 302


def test_without_mail_an_admin_gets_no_reset_link(app, web_as, db):
    admin = web_as("admin")
    user_id = make_user(app, "rev@example.org", "reviewer")
    page = f"/staff/admin/users/{user_id}"
    refused = submit(admin, page, {}, action=f"{page}/reset-link")
    assert refused.status_code == 409
    body = refused.get_data(as_text=True)
    assert "armslength reset-password rev@example.org" in body and "/account/link/" not in body


def test_a_reset_link_goes_to_the_user_not_the_admin(app, web_as, db, inbox):  # noqa: F811
    admin = web_as("admin")
    user_id = make_user(app, "rev@example.org", "reviewer")
    page = f"/staff/admin/users/{user_id}"
    sent = submit(admin, page, {}, action=f"{page}/reset-link")
    assert sent.status_code == 303
    assert "/account/link/" not in admin.get(page).get_data(as_text=True)
    (_sender, recipients, message), = inbox.messages
    assert recipients == ["rev@example.org"]
    link = re.search(r"https?://[^/\s]+(/account/link/\S+)", message.get_content()).group(1)
    person = app.test_client()
    assert submit(person, link, {"new_password": "reset by me only",
                                 "new_password_again": "reset by me only"}).status_code == 303
    assert sign_in(person, "rev@example.org", "reset by me only").status_code == 302
    assert app.test_client().get(link).status_code == 404

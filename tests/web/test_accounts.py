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
from tests.webtools import PASSWORD, establish, make_user, sign_in, submit, submit_shown

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

def _post_shown(client, path: str, html: str, data: dict, action: str | None = None):
    """An enrolment page shows its key once: answer the form that came with that key."""
    return submit_shown(client, path, html, data, action)


def _enrol(client, email: str) -> tuple[str, str]:
    response = sign_in(client, email)
    assert response.status_code == 303 and response.headers["Location"].endswith("/login/enrol")
    page = client.get("/login/enrol").get_data(as_text=True)
    secret = SECRET.search(page).group(1)
    code = pyotp.TOTP(secret).now()
    done = _post_shown(client, "/login/enrol", page, {"code": code})
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
    settings = {"ARMSLENGTH_ENV": "production", "SECRET_KEY": "x" * 40,
                "AUDIT_SEAL_KEY": "s" * 40}
    assert load_settings(settings, str(tmp_path))["REQUIRE_SECOND_FACTOR"] is True
    with pytest.raises(ConfigError, match="REQUIRE_SECOND_FACTOR"):
        load_settings({**settings, "REQUIRE_SECOND_FACTOR": "false"}, str(tmp_path))
    assert load_settings({}, str(tmp_path))["REQUIRE_SECOND_FACTOR"] is False


def test_anyone_may_set_up_a_second_factor_from_their_account(app, web_as, db):
    fundraiser = web_as("fundraiser")
    page = fundraiser.get("/account/second-factor").get_data(as_text=True)
    secret = SECRET.search(page).group(1)
    code = pyotp.TOTP(secret).now()
    # Not without the account's password: a borrowed session cannot add a factor either.
    wrong = _post_shown(fundraiser, "/account/second-factor", page,
                        {"current_password": "not the password", "code": code})
    assert wrong.status_code == 400
    done = _post_shown(fundraiser, "/account/second-factor", page,
                       {"current_password": PASSWORD, "code": code})
    assert done.status_code == 303
    db.rollback()
    user = db.execute(select(User).where(User.email == "web-fundraiser@example.org")).scalar_one()
    assert user.totp_secret == secret and user.totp_pending_secret is None


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


# --- review findings: replacing the factor, where its secret waits, sessions -------------------

def _session_cookie(app, client) -> dict:
    """The Flask session cookie as anyone who sees it can read it (signed, not encrypted)."""
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    assert cookie is not None
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


def _user(db, email: str) -> User:
    db.rollback()
    return db.execute(select(User).where(User.email == email)).scalar_one()


def test_the_key_being_set_up_never_travels_in_the_session_cookie(app, db):
    app.config["REQUIRE_SECOND_FACTOR"] = True
    make_user(app, "rev@example.org", "reviewer")
    client = app.test_client()
    assert sign_in(client, "rev@example.org").status_code == 303
    page = client.get("/login/enrol")
    secret = SECRET.search(page.get_data(as_text=True)).group(1)
    assert page.headers["Cache-Control"] == "no-store"
    assert secret not in repr(_session_cookie(app, client))
    assert _user(db, "rev@example.org").totp_pending_secret == secret  # on the server
    # Shown once: the next visit shows another key, and the first one's codes no longer do.
    again = client.get("/login/enrol").get_data(as_text=True)
    second = SECRET.search(again).group(1)
    assert second != secret
    stale = _post_shown(client, "/login/enrol", again, {"code": pyotp.TOTP(secret).now()})
    assert stale.status_code == 401
    assert secret not in stale.get_data(as_text=True) and second not in stale.get_data(
        as_text=True)

    fundraiser = app.test_client()
    make_user(app, "fund@example.org", "fundraiser")
    assert sign_in(fundraiser, "fund@example.org").status_code == 302
    shown = fundraiser.get("/account/second-factor").get_data(as_text=True)
    own = SECRET.search(shown).group(1)
    assert own not in repr(_session_cookie(app, fundraiser))


def test_a_taken_over_session_cannot_swap_the_second_factor(app, db):
    """Whoever holds a signed-in browser (not the password, not the phone) tries to move the
    account's second factor to their own app."""
    app.config["REQUIRE_SECOND_FACTOR"] = True
    make_user(app, "rev@example.org", "reviewer")
    browser = app.test_client()
    owners, _code = _enrol(browser, "rev@example.org")
    taker = "/account/second-factor"
    page = browser.get(taker).get_data(as_text=True)
    theirs = SECRET.search(page).group(1)
    new_code = pyotp.TOTP(theirs).now()

    without_code = _post_shown(browser, taker, page, {"current_password": PASSWORD,
                                                      "code": new_code})
    assert without_code.status_code == 400
    guessed = _post_shown(browser, taker, page, {"current_password": "a guess at it",
                                                 "current_code": "123456", "code": new_code})
    assert guessed.status_code == 400
    wrong_code = "000000" if pyotp.TOTP(owners).now() != "000000" else "111111"
    no_phone = _post_shown(browser, taker, page, {"current_password": PASSWORD,
                                                  "current_code": wrong_code, "code": new_code})
    assert no_phone.status_code == 400
    assert _user(db, "rev@example.org").totp_secret == owners

    # The owner, with the password and the phone, moves it; audited as a replacement.
    later = utcnow() + timedelta(seconds=30)  # the enrolment spent the current step
    moved = _post_shown(browser, taker, page, {
        "current_password": PASSWORD, "current_code": pyotp.TOTP(owners).at(later),
        "code": new_code})
    assert moved.status_code == 303, moved.get_data(as_text=True)
    assert _user(db, "rev@example.org").totp_secret == theirs
    entry = db.execute(select(AuditEntry).where(
        AuditEntry.action == "user.second_factor_enrolled").order_by(AuditEntry.id.desc())
    ).scalars().first()
    assert entry.data["replaced"] is True
    assert entry.data["confirmed_with"] == ["password", "code from the replaced factor"]


def test_removing_a_second_factor_takes_the_password_and_a_code(app, web_as, db):
    fundraiser = web_as("fundraiser")
    email = "web-fundraiser@example.org"
    page = fundraiser.get("/account/second-factor").get_data(as_text=True)
    secret = SECRET.search(page).group(1)
    assert _post_shown(fundraiser, "/account/second-factor", page, {
        "current_password": PASSWORD, "code": pyotp.TOTP(secret).now()}).status_code == 303

    account = fundraiser.get("/account").get_data(as_text=True)
    refused = _post_shown(fundraiser, "/account", account, {
        "remove-current_password": PASSWORD, "remove-current_code": "123456"
        if pyotp.TOTP(secret).now() != "123456" else "654321"},
        action="/account/second-factor/remove")
    assert refused.status_code == 400
    assert _user(db, email).totp_secret == secret
    later = pyotp.TOTP(secret).at(utcnow() + timedelta(seconds=30))
    removed = _post_shown(fundraiser, "/account", account, {
        "remove-current_password": PASSWORD, "remove-current_code": later},
        action="/account/second-factor/remove")
    assert removed.status_code == 303
    assert _user(db, email).totp_secret is None
    assert db.execute(select(AuditEntry).where(
        AuditEntry.action == "user.second_factor_removed")).scalars().one()


def test_a_reviewer_cannot_remove_the_second_factor_they_must_have(app, db):
    app.config["REQUIRE_SECOND_FACTOR"] = True
    make_user(app, "rev@example.org", "reviewer")
    browser = app.test_client()
    secret, _code = _enrol(browser, "rev@example.org")
    account = browser.get("/account").get_data(as_text=True)
    assert "Remove second factor" not in account
    from tests.webtools import session_token

    refused = browser.post("/account/second-factor/remove", data={
        "remove-csrf_token": session_token(account), "csrf_token": session_token(account),
        "remove-current_password": PASSWORD,
        "remove-current_code": pyotp.TOTP(secret).at(utcnow() + timedelta(seconds=30))})
    assert refused.status_code in (400, 409)
    assert _user(db, "rev@example.org").totp_secret == secret


def test_the_account_page_is_no_way_around_the_sign_in_limits(app, web_as):
    """A borrowed session guessing the password on the account page is throttled like
    sign-in: the account's free failures, then a wait."""
    from app.auth import throttle

    viewer = web_as("viewer")
    answers = []
    for attempt in range(throttle.ACCOUNT.free + 2):
        answers.append(submit(viewer, "/account", {
            "current_password": f"guess number {attempt}", "new_password": "a new long password",
            "new_password_again": "a new long password"}, action="/account/password").status_code)
    assert answers[:throttle.ACCOUNT.free + 1] == [400] * (throttle.ACCOUNT.free + 1)
    assert answers[-1] == 429
    # Sign-in from elsewhere is held back too: the account's count is one count.
    assert sign_in(app.test_client(), "web-viewer@example.org").status_code == 429


def test_a_reset_link_ends_every_other_session(app, web_as, db, inbox):  # noqa: F811
    admin = web_as("admin")
    user_id = make_user(app, "rev@example.org", "reviewer")
    elsewhere = app.test_client()
    assert sign_in(elsewhere, "rev@example.org").status_code == 302
    assert elsewhere.get("/staff/").status_code == 200
    page = f"/staff/admin/users/{user_id}"
    assert submit(admin, page, {}, action=f"{page}/reset-link").status_code == 303
    (_sender, _recipients, message), = inbox.messages
    link = re.search(r"https?://[^/\s]+(/account/link/\S+)", message.get_content()).group(1)
    assert submit(app.test_client(), link, {"new_password": "reset by me only",
                                            "new_password_again": "reset by me only"}
                  ).status_code == 303
    assert elsewhere.get("/staff/").status_code == 302  # signed out

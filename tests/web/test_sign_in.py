"""Sign-in, sign-out, throttling of failed attempts and CSRF on the staff pages."""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.auth import throttle
from app.db.locking import ledger_batch
from models import AuditEntry, SignInThrottle
from tests.webtools import PASSWORD, csrf_token, make_user, session_token, sign_in

WRONG = "Email or password is wrong."
THROTTLED = re.compile(r"Too many failed attempts\. Try again in \d+ minutes?\.")


def test_staff_home_needs_sign_in(client):
    response = client.get("/staff/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_sign_in_then_home_shows_headroom(app, client):
    make_user(app, "ana@example.org", "viewer")
    response = sign_in(client, "ana@example.org")
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"
    page = client.get("/staff/")
    assert page.status_code == 200
    assert "Headroom" in page.get_data(as_text=True)


def test_wrong_password_is_refused(app, client):
    make_user(app, "ana@example.org", "viewer")
    response = sign_in(client, "ana@example.org", "wrong password!!")
    assert response.status_code == 401
    assert "Email or password is wrong." in response.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302


def test_login_form_without_csrf_token_is_refused(app, client):
    make_user(app, "ana@example.org", "viewer")
    response = client.post("/login", data={"email": "ana@example.org",
                                           "password": "long enough password"})
    assert response.status_code == 400
    assert client.get("/staff/").status_code == 302


def test_sign_out_kills_copies_of_the_session_cookie(app, client):
    make_user(app, "ana@example.org", "viewer")
    sign_in(client, "ana@example.org")
    stolen = client.get_cookie("session").value
    home = client.get("/staff/")
    response = client.post("/logout", data={"csrf_token": session_token(home.get_data(as_text=True))})
    assert response.status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/staff/").status_code == 302


def test_open_redirect_is_refused(app, client):
    make_user(app, "ana@example.org", "viewer")
    page = client.get("/login")
    response = client.post("/login?next=//evil.example/", data={
        "email": "ana@example.org", "password": "long enough password",
        "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.headers["Location"] == "/staff/"


def test_security_headers(client):
    response = client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- throttling failed attempts ---------------------------------------------------------------

class Clock:
    """The app's sign-in clock (config CLOCK): moved by the test, never slept on."""

    def __init__(self):
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(app) -> Clock:
    app.config["CLOCK"] = clock = Clock()
    return clock


def attempt(client, email: str, password: str = PASSWORD, address: str = "127.0.0.1"):
    """One sign-in through the page's own form, from a client address."""
    env = {"REMOTE_ADDR": address}
    page = client.get("/login", environ_base=env)
    return client.post("/login", environ_base=env, data={
        "email": email, "password": password,
        "csrf_token": csrf_token(page.get_data(as_text=True))})


def sign_out(client, address: str = "127.0.0.1"):
    env = {"REMOTE_ADDR": address}  # the session is bound to the address it signed in from
    page = client.get("/staff/", environ_base=env)
    assert page.status_code == 200
    return client.post("/logout", environ_base=env,
                       data={"csrf_token": session_token(page.get_data(as_text=True))})


def answer(response) -> tuple:
    text = response.get_data(as_text=True)
    message = WRONG if WRONG in text else (THROTTLED.search(text) or [None])[0]
    return response.status_code, message, response.headers.get("Retry-After")


def test_limit_delays_double_up_to_the_cap():
    limit = throttle.Limit(free=5, first_delay=timedelta(seconds=30), max_delay=timedelta(minutes=15))
    assert [limit.delay_after(n) for n in (1, 5)] == [None, None]
    assert [limit.delay_after(n).total_seconds() for n in (6, 7, 8, 9, 10, 11, 50, 10**6)] == \
        [30, 60, 120, 240, 480, 900, 900, 900]


def test_unknown_and_existing_accounts_get_the_same_answers(app, clock):
    make_user(app, "ana@example.org", "viewer")
    answers = {}
    for email, address in [("ana@example.org", "198.51.100.1"), ("nobody@example.org", "198.51.100.2")]:
        client = app.test_client()
        answers[email] = [answer(attempt(client, email, "wrong password!!", address))
                          for _ in range(8)]
    assert answers["ana@example.org"] == answers["nobody@example.org"]
    # Five free failures, the sixth starts a 30-second pause: refused unchecked, 429.
    assert answers["ana@example.org"][:6] == [(401, WRONG, None)] * 6
    assert answers["ana@example.org"][6:] == [(429, "Too many failed attempts. Try again in 1 minute.",
                                               "30")] * 2


def test_delays_grow_then_the_right_password_works_again(app, clock):
    make_user(app, "ana@example.org", "viewer")
    client = app.test_client()
    for _ in range(6):
        assert attempt(client, "ana@example.org", "wrong password!!").status_code == 401
    assert answer(attempt(client, "ana@example.org"))[::2] == (429, "30")  # even the right one
    clock.advance(31)
    assert attempt(client, "ana@example.org", "wrong password!!").status_code == 401
    assert answer(attempt(client, "ana@example.org"))[::2] == (429, "60")  # doubled
    clock.advance(61)
    assert attempt(client, "ana@example.org").status_code == 302


def test_refused_attempts_are_not_counted_and_cost_no_password_check(app, clock, db):
    make_user(app, "ana@example.org", "viewer")
    client = app.test_client()
    for _ in range(6):
        attempt(client, "ana@example.org", "wrong password!!")
    for _ in range(20):  # hammering a paused account changes nothing
        assert attempt(client, "ana@example.org", "wrong password!!").status_code == 429
    counted = db.execute(select(SignInThrottle.failures).where(
        SignInThrottle.key == throttle.account_key("ana@example.org"))).scalar_one()
    assert counted == 6
    clock.advance(31)
    assert attempt(client, "ana@example.org").status_code == 302


def test_an_attacker_elsewhere_cannot_keep_the_owner_out(app, clock):
    make_user(app, "ana@example.org", "admin")
    make_user(app, "mallory@example.org", "viewer")
    owner = app.test_client()
    assert attempt(owner, "ana@example.org", address="203.0.113.5").status_code == 302
    sign_out(owner, "203.0.113.5")

    # The attacker holds a device cookie too, for their own account: it does not count for ana's.
    attacker = app.test_client()
    assert attempt(attacker, "mallory@example.org", address="192.0.2.66").status_code == 302
    sign_out(attacker, "192.0.2.66")
    for _ in range(12):
        attempt(attacker, "ana@example.org", "guess guess guess", address="192.0.2.66")
    assert attempt(attacker, "ana@example.org", address="192.0.2.66").status_code == 429

    # A browser ana never used waits like the attacker; her own browser does not.
    assert attempt(app.test_client(), "ana@example.org", address="203.0.113.5").status_code == 429
    assert attempt(owner, "ana@example.org", address="203.0.113.5").status_code == 302


def test_the_owners_browser_is_throttled_on_its_own_failures(app, clock):
    make_user(app, "ana@example.org", "viewer")
    owner = app.test_client()
    assert attempt(owner, "ana@example.org").status_code == 302
    sign_out(owner)
    for _ in range(6):
        assert attempt(owner, "ana@example.org", "wrong password!!").status_code == 401
    # Its own pause is over the cookie: the account's count applies now, which is clean.
    assert attempt(owner, "ana@example.org").status_code == 302


def test_one_address_trying_many_accounts_is_slowed_down_alone(app, clock):
    make_user(app, "ana@example.org", "viewer")
    sprayer = app.test_client()
    for i in range(21):
        assert attempt(sprayer, f"user{i}@example.org", "Winter2026!!", "192.0.2.9").status_code == 401
    assert answer(attempt(sprayer, "ana@example.org", address="192.0.2.9"))[::2] == (429, "30")
    assert attempt(app.test_client(), "ana@example.org", address="198.51.100.1").status_code == 302


def test_a_deactivated_account_is_answered_like_a_wrong_password(app, clock, web_as):
    from app.auth.users import deactivate_user
    from app.ledger.audit import Actor

    user_id = make_user(app, "ana@example.org", "viewer")
    with app.extensions["armslength"].sessions() as session:
        deactivate_user(session, user_id, Actor("test", role="admin"))
    assert answer(attempt(app.test_client(), "ana@example.org")) == (401, WRONG, None)


def test_sign_in_and_out_write_nothing_to_the_audit_trail(app, clock, db):
    make_user(app, "ana@example.org", "viewer")
    before = db.execute(select(func.count(AuditEntry.id))).scalar_one()
    db.rollback()
    client = app.test_client()
    attempt(client, "ana@example.org", "wrong password!!")
    assert attempt(client, "ana@example.org").status_code == 302
    sign_out(client)
    assert db.execute(select(func.count(AuditEntry.id))).scalar_one() == before


# --- a busy ledger --------------------------------------------------------------------------

#: The holder gives up after this, so the test is bounded even if sign-in waited for it.
HOLD_AT_MOST = 15
#: What a sign-in may take while the ledger is held: on SQLite a failure's count waits
#: throttle.WRITE_WAIT_SECONDS for the database write lock, then gives up.
PROMPT = throttle.WRITE_WAIT_SECONDS + 3


@contextmanager
def ledger_held(app):
    """Another connection holds the ledger lock (an open ledger_batch, as a long import does)."""
    taken, release = threading.Event(), threading.Event()

    def hold():
        with app.extensions["armslength"].sessions() as session, ledger_batch(session):
            taken.set()
            release.wait(HOLD_AT_MOST)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        assert taken.wait(10), "could not take the ledger lock"
        yield
    finally:
        release.set()
        holder.join(HOLD_AT_MOST + 5)


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_sign_in_and_out_work_while_the_ledger_is_locked(app):
    make_user(app, "ana@example.org", "viewer")
    client = app.test_client()
    with ledger_held(app):
        response, took = timed(lambda: attempt(client, "ana@example.org", "wrong password!!"))
        assert answer(response) == (401, WRONG, None) and took < PROMPT
        response, took = timed(lambda: attempt(client, "ana@example.org"))
        assert response.status_code == 302 and took < PROMPT
        page = client.get("/staff/")
        assert page.status_code == 200
        token = session_token(page.get_data(as_text=True))
        response, took = timed(lambda: client.post("/logout", data={"csrf_token": token}))
        assert response.status_code == 302 and took < PROMPT
        assert client.get("/staff/").status_code == 302


def test_failures_count_while_an_import_holds_the_database(app, clock, db, monkeypatch):
    """On SQLite an import holds the one write lock for minutes, and a failure could not be
    written: it went uncounted, so guesses were unlimited while the import ran. Now it is
    counted in the process until it can be written (PostgreSQL writes it at once)."""
    monkeypatch.setattr(throttle, "WRITE_WAIT_SECONDS", 0.3)  # keep the test short
    make_user(app, "ana@example.org", "viewer")
    attacker = app.test_client()
    free = throttle.ACCOUNT.free
    with ledger_held(app):
        answers = [answer(attempt(attacker, "ana@example.org", f"guess {n} at it"))[0]
                   for n in range(free + 2)]
        assert answers == [401] * (free + 1) + [429]
        # The right password waits too: the block is the account's, as if written.
        assert attempt(app.test_client(), "ana@example.org").status_code == 429
    clock.advance(31)
    assert answer(attempt(attacker, "ana@example.org", "one more guess"))[0] == 401
    db.rollback()
    stored = db.execute(select(SignInThrottle.failures).where(
        SignInThrottle.key == throttle.account_key("ana@example.org"))).scalar_one()
    assert stored == free + 2  # every counted failure is in the table once it can be written

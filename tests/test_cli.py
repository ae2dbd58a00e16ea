"""The `armslength` commands, run through Flask's CLI test runner."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import func, inspect, select

from app import create_app
from app.demo import DEMO_PASSWORD
from app.ledger import campaigns
from app.payments import recurring
from models import AuditEntry, Decision, Donor, Gift, GiftTribute, Interaction, Relationship, Task, User
from tests.builders import World, gift
from tests.empty_db import BACKENDS, empty_database
from tests.tampering import tamper

SETTINGS = {"TESTING": True, "SECRET_KEY": "test-secret-key-not-for-production", "ORG_TIMEZONE": "UTC"}


def run(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def last_line(text_: str) -> str:
    return text_.strip().splitlines()[-1]


@pytest.fixture(params=BACKENDS)
def fresh_app(request, tmp_path):
    """An app on a database with no tables at all: the commands must build the schema."""
    with empty_database(request.param, tmp_path, "cli") as url:
        application = create_app({**SETTINGS, "DATABASE_URL": url})
        yield application
        application.extensions["armslength"].engine.dispose()


def count(app, column) -> int:
    with app.extensions["armslength"].sessions() as session:
        return session.execute(select(func.count(column))).scalar_one()


# --- init-db --------------------------------------------------------------------------------

def test_init_db_builds_the_schema_by_migrations_and_can_run_again(fresh_app):
    first = run(fresh_app, "init-db")
    assert first.exit_code == 0, first.output
    assert last_line(first.stdout) == "database ready"
    assert "policy version" in first.stdout
    tables = set(inspect(fresh_app.extensions["armslength"].engine).get_table_names())
    assert {"alembic_version", "gift", "donor", "audit_entry", "ledger_lock"} <= tables

    second = run(fresh_app, "init-db")
    assert second.exit_code == 0, second.output
    assert second.stdout.strip() == "database ready"  # nothing new to register
    assert run(fresh_app, "verify-audit").exit_code == 0


def test_init_db_never_puts_a_changed_policy_file_in_force_alone(fresh_app, tmp_path):
    """Whoever runs the server cannot weaken the policy by editing the file and running
    init-db: once a version is stored, another comes only through two people."""
    assert run(fresh_app, "init-db").exit_code == 0
    from policies import DEFAULT_POLICY_FILE

    weaker = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    weaker = weaker.replace('version = "', 'version = "weaker-', 1).replace(
        'cap = "0.50"', 'cap = "0.90"', 1)
    assert 'cap = "0.90"' in weaker
    path = tmp_path / "weaker.toml"
    path.write_text(weaker, encoding="utf-8")
    edited = create_app({**SETTINGS, "DATABASE_URL": fresh_app.config["DATABASE_URL"],
                         "POLICY_FILE": str(path)})
    try:
        result = run(edited, "init-db")
        assert result.exit_code == 0, result.output
        assert "is not in force" in result.stdout and "second person" in result.stdout
        with edited.extensions["armslength"].sessions() as session:
            in_force = edited.extensions["armslength"].policies.current(session)
        assert str(in_force.cap) == "0.50" and not in_force.version.startswith("weaker-")
    finally:
        edited.extensions["armslength"].engine.dispose()


# --- create-user, create-token ---------------------------------------------------------------

def test_create_user(app):
    result = run(app, "create-user", "Ana@Example.org", "--role", "reviewer",
                 "--password", "a long enough password")
    assert result.exit_code == 0, result.output
    assert "ana@example.org (reviewer)" in result.stdout
    with app.extensions["armslength"].sessions() as session:
        user = session.execute(select(User).where(User.email == "ana@example.org")).scalar_one()
        assert user.role == "reviewer"
        assert "a long enough password" not in user.password_hash


def test_create_user_refuses_an_unknown_role(app):
    result = run(app, "create-user", "a@example.org", "--role", "owner", "--password", "x" * 20)
    assert result.exit_code != 0
    assert "Invalid value for '--role'" in result.output
    assert "'owner' is not one of" in result.output
    assert count(app, User.id) == 0


def test_create_user_refuses_a_short_password(app):
    result = run(app, "create-user", "a@example.org", "--role", "admin", "--password", "short")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: password: String should have at least 12 characters"
    assert count(app, User.id) == 0


def test_create_user_refuses_a_duplicate_email(app):
    args = ("create-user", "a@example.org", "--role", "admin", "--password", "x" * 20)
    assert run(app, *args).exit_code == 0
    again = run(app, *args)
    assert again.exit_code == 1
    assert "error: email: a user with this email exists" in again.stderr
    assert count(app, User.id) == 1


def test_reset_password_sets_a_new_one_and_ends_sessions(app):
    run(app, "create-user", "rev@example.org", "--role", "reviewer", "--password", "x" * 20)
    with app.extensions["armslength"].sessions() as session:
        user = session.execute(select(User).where(User.email == "rev@example.org")).scalar_one()
        nonce = user.session_nonce
        user.totp_secret = "JBSWY3DPEHPK3PXP"
        user.totp_pending_secret = "KRSXG5CTMVRXEZLU"  # a move to another app under way
        session.commit()
    # Typed at the prompt, twice, unseen.
    result = app.test_cli_runner().invoke(args=["reset-password", "REV@example.org"],
                                          input="a brand new password\na brand new password\n")
    assert result.exit_code == 0, result.output
    assert "password set for rev@example.org" in result.stdout
    assert "a brand new password" not in result.stdout
    with app.extensions["armslength"].sessions() as session:
        user = session.execute(select(User).where(User.email == "rev@example.org")).scalar_one()
        assert user.session_nonce != nonce and user.totp_secret == "JBSWY3DPEHPK3PXP"
        # Reset by the operator: the account waits again before it may approve.
        assert user.role_since > user.created_at
    client = app.test_client()
    from tests.webtools import sign_in

    assert sign_in(client, "rev@example.org", "a brand new password").status_code == 303
    cleared = run(app, "reset-password", "rev@example.org", "--password", "y" * 20,
                  "--clear-second-factor")
    assert cleared.exit_code == 0 and "second factor removed" in cleared.stdout
    with app.extensions["armslength"].sessions() as session:
        assert session.execute(select(User.totp_secret, User.totp_pending_secret)).one() == (
            None, None)
        actions = session.execute(select(AuditEntry.action)).scalars().all()
    assert actions.count("user.password_changed") == 2


def test_reset_password_refuses_an_unknown_user_and_a_short_password(app):
    assert run(app, "reset-password", "nobody@example.org", "--password", "x" * 20).exit_code == 1
    run(app, "create-user", "a@example.org", "--role", "admin", "--password", "x" * 20)
    short = run(app, "reset-password", "a@example.org", "--password", "short")
    assert short.exit_code == 1 and "password: must be 12 to 200" in short.stderr


def test_create_token_prints_a_working_token_last(app, client):
    run(app, "create-user", "viewer@example.org", "--role", "viewer", "--password", "x" * 20)
    result = run(app, "create-token", "viewer@example.org", "--name", "laptop")
    assert result.exit_code == 0, result.output
    token = last_line(result.stdout)
    assert token.startswith("al_") and " " not in token

    response = client.get("/api/v1/compliance/summary",
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["lab_employee_share"] == "0.000000"
    wrong = client.get("/api/v1/compliance/summary", headers={"Authorization": f"Bearer {token}x"})
    assert wrong.status_code == 401


def test_create_token_for_an_unknown_user_fails(app):
    result = run(app, "create-token", "nobody@example.org")
    assert result.exit_code == 1
    assert "user nobody@example.org not found" in result.stderr
    assert result.stdout == ""


# --- compliance-summary -----------------------------------------------------------------------

def test_compliance_summary_text_json_and_as_of(app, api):
    world = World(api)
    day = date(2026, 3, 2)
    gift(api, world.donor["id"], "3000.00", day)
    gift(api, world.employee["id"], "1000.00", day)

    data = json.loads(run(app, "compliance-summary", "--as-of", day.isoformat(), "--json").stdout)
    assert data["as_of"] == "2026-03-02"
    assert data["total_funding"] == "4000.00"
    assert data["lab_employee_funding"] == "1000.00"
    assert data["lab_employee_share"] == "0.250000"
    assert data["headroom"] == "1999.99"
    assert data["in_breach"] is False

    text_result = run(app, "compliance-summary", "--as-of", day.isoformat())
    assert text_result.exit_code == 0, text_result.output
    out = text_result.stdout
    assert "Compliance summary as of 2026-03-02" in out
    assert "4,000.00 USD" in out
    assert "lab-employee share:   25% (cap 50%, warning 40%)" in out
    assert "in breach:            no" in out

    before = json.loads(run(app, "compliance-summary", "--as-of", "2026-03-01", "--json").stdout)
    assert before["total_funding"] == "0.00"
    later = json.loads(run(app, "compliance-summary", "--as-of", "2027-03-02", "--json").stdout)
    assert later["total_funding"] == "0.00"  # the window has moved past the gifts


def test_compliance_summary_defaults_to_today(app):
    data = json.loads(run(app, "compliance-summary", "--json").stdout)
    assert data["as_of"] == app.extensions["armslength"].today().isoformat()


def test_compliance_summary_rejects_a_bad_date(app):
    result = run(app, "compliance-summary", "--as-of", "02/03/2026")
    assert result.exit_code == 1
    assert "--as-of must be YYYY-MM-DD" in result.stderr


# --- verify-audit -------------------------------------------------------------------------------

def test_verify_audit_reports_an_intact_chain_then_a_tampered_entry(app, api):
    World(api)
    entries = count(app, AuditEntry.id)
    result = run(app, "verify-audit")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"audit chain intact: {entries} entries",
                                          # World's 2 organisations, 3 donors, 1
                                          # affiliation, the admin's staff account and
                                          # its API token
                                          "ledger rows match the audit trail: 8 rows",
                                          # no gifts yet: no day to recompute
                                          "daily funding totals match their recomputation: "
                                          "0 rows"]

    with app.extensions["armslength"].sessions() as session:
        tamper(session, "UPDATE audit_entry SET actor = 'someone else' WHERE id = 3")
        session.commit()
    broken = run(app, "verify-audit")
    assert broken.exit_code == 1
    assert "audit chain BROKEN at entry 3: content does not match its hash" in broken.stderr
    assert "(2 entries verified before it)" in broken.stderr


# --- demo-data ------------------------------------------------------------------------------------

def test_demo_data_fills_an_empty_database_once(fresh_app):
    result = run(fresh_app, "demo-data")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Demo ledger loaded (seed 7)" in out
    assert "DEMO ONLY" in out and DEMO_PASSWORD in out
    assert "admin@demo.example.org" in out and "viewer@demo.example.org" in out

    with fresh_app.extensions["armslength"].sessions() as session:
        statuses = dict(session.execute(select(Gift.status, func.count()).group_by(Gift.status)).all())
        currencies = set(session.execute(select(Gift.currency).distinct()).scalars())
        refunded = session.execute(select(func.count()).where(Gift.refunded_minor > 0)).scalar_one()
    assert set(statuses) == {"accepted", "held", "rejected"}
    assert statuses["accepted"] > 300
    assert {"USD", "EUR", "JPY"} <= currencies
    assert refunded == 2
    with fresh_app.extensions["armslength"].sessions() as session:
        interactions = session.execute(select(func.count()).select_from(Interaction)).scalar_one()
        open_tasks = session.execute(select(func.count()).where(Task.status == "open")).scalar_one()
        quiet = session.execute(select(func.count()).where(Donor.do_not_contact)).scalar_one()
    assert interactions >= 12 and open_tasks >= 3 and quiet == 1
    with fresh_app.extensions["armslength"].sessions() as session:
        funds = {p.code: p for p in campaigns.progress(session, "fund", "USD")}
        drives = campaigns.progress(session, "campaign", "USD")
        appeals = campaigns.progress(session, "appeal", "USD")
        kinds = sorted(session.execute(select(Relationship.kind)).scalars())
        held_by_household = [
            d for d in session.execute(select(Decision)).scalars()
            if any(r["rule"] == "household_of_senior_decision_maker" and r["fired"]
                   for r in d.reasons)]
    # Campaigns, appeals and funds are used: restricted money in its funds, year-end giving.
    assert funds["methodology-research"].restricted and funds["methodology-research"].raised_minor
    assert any(d.code.startswith("year-end-") and d.gifts for d in drives)
    assert sum(a.gifts for a in appeals) > 5
    assert kinds == ["colleague", "household", "spouse_partner", "spouse_partner"]
    # A few monthly donors gave through the donate page: every status of the staff list, each
    # with the gifts it paid (their lifetime value, net of refunds).
    with fresh_app.extensions["armslength"].sessions() as session:
        statuses = recurring.counts(session)
        donations = session.execute(recurring.recurring_query()).scalars().all()
        values = recurring.lifetime_values(session, "USD", [d.id for d in donations])
    assert statuses == {"active": 2, "paused": 1, "past_due": 1, "cancelled": 1}
    assert len(values) == 5 and all(total > 0 and gifts > 0 for total, gifts in values.values())
    # The senior decision-maker's spouse: the gift from before the marriage was on file is
    # re-screened and held, and the next one is held at screening.
    assert sorted(d.kind for d in held_by_household) == ["rescreen", "screening"]
    # Letters: a gift that bought a gala dinner, and one in memory of someone.
    with fresh_app.extensions["armslength"].sessions() as session:
        goods = session.execute(select(Gift.goods_description, Gift.goods_value_minor)
                                .where(Gift.goods_description.is_not(None))).all()
        tributes = session.execute(select(GiftTribute.kind, GiftTribute.notify_name)).all()
    assert goods == [("Two seats at the spring gala dinner", 18000)]
    assert tributes == [("memory", "Thomas Ellison")]

    summary = json.loads(run(fresh_app, "compliance-summary", "--json").stdout)
    share = float(summary["lab_employee_share"])
    assert 0.05 < share < float(summary["cap"])
    assert summary["in_breach"] is False
    assert "lab-employee share:" in out and "in breach:            no" in out
    assert run(fresh_app, "verify-audit").exit_code == 0

    gifts = count(fresh_app, Gift.id)
    again = run(fresh_app, "demo-data")
    assert again.exit_code == 1
    assert "demo-data only fills an empty database" in again.stderr
    assert count(fresh_app, Gift.id) == gifts


def test_demo_data_is_deterministic_for_a_seed(tmp_path):
    def ledger(name: str, seed: int) -> list[tuple]:
        application = create_app({**SETTINGS, "DATABASE_URL": f"sqlite:///{tmp_path / name}"})
        try:
            assert run(application, "demo-data", "--seed", str(seed)).exit_code == 0
            with application.extensions["armslength"].sessions() as session:
                return session.execute(
                    select(Gift.donor_id, Gift.amount_minor, Gift.currency, Gift.received_on,
                           Gift.status).order_by(Gift.id)
                ).all()
        finally:
            application.extensions["armslength"].engine.dispose()

    first = ledger("a.sqlite3", 7)
    assert ledger("b.sqlite3", 7) == first


def test_demo_data_refuses_to_run_in_production(tmp_path):
    application = create_app({**SETTINGS, "DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}",
                              "ARMSLENGTH_ENV": "production", "SECRET_KEY": "k" * 40,
                              "AUDIT_SEAL_KEY": "s" * 40})
    try:
        result = run(application, "demo-data")
        assert result.exit_code == 1
        assert "does not run with ARMSLENGTH_ENV=production" in result.stderr
        assert inspect(application.extensions["armslength"].engine).get_table_names() == []
    finally:
        application.extensions["armslength"].engine.dispose()

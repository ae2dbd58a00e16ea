"""Who a donor is, and staff accounts' passwords and one-time links, are sealed too (issues
11 and 12, the last independent review's open gaps): an insider with database access who
renames a lab executive, gives them another e-mail or matching key, sets a known password
hash on a reviewer's account, or slips in a reset link, is named by verification. The
personal columns are sealed by HMAC under a key kept outside the database
(app.ledger.seal_key), so the chain holds nothing a guess can be tested against.

Each edit is made through a connection of its own (tests.tampering.tamper_apart), on SQLite
and PostgreSQL alike; the honest paths must still verify clean.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from app.config import ConfigError, load_settings
from app.ledger import row_hashes, seal_key
from app.ledger.audit import Actor
from models import AccountLink, AuditEntry, Donor, User
from tests.builders import affiliate, gift, organization, person
from tests.tampering import tamper_apart

DAY = "2026-03-02"
ADMIN = Actor("test", role="admin")


def _verify(api) -> dict:
    response = api.get("/audit/verify")
    assert response.status_code == 200
    return response.get_json()


def _findings(report: dict) -> set[tuple[str, int, str]]:
    return {(f["table"], f["id"], f["problem"]) for f in report["row_findings"]}


def _one(db, query):
    try:
        return db.execute(query).scalar_one()
    finally:
        db.rollback()


@pytest.fixture
def executive(api) -> dict:
    """A lab's vice president, a senior decision-maker: their gifts are refused."""
    lab = organization(api, "Halcyon Labs", covered_lab=True)
    vp = person(api, "Morgan Chen", "morgan@halcyon.example")
    affiliate(api, vp["id"], lab["id"], start="2024-01-01", senior=True,
              title="Vice President of Research")
    return vp


@pytest.mark.parametrize("edit", [
    "UPDATE donor SET name = 'M. Chenn' WHERE id = {id}",
    "UPDATE donor SET email = 'someone@else.example' WHERE id = {id}",
    # The matching keys alone: the namesake lookup would miss while the page looks the same.
    "UPDATE donor SET email_key = 'nobody@nowhere.example' WHERE id = {id}",
    "UPDATE donor SET name_key_a = 'zzzz', name_key_b = 'zzzz' WHERE id = {id}",
    "UPDATE donor SET phone_key = '0000000000' WHERE id = {id}",
    "UPDATE donor SET postal_address = '1 Elsewhere Road' WHERE id = {id}",
    # Whether the donor may be named in public: a signed funding page would name them.
    "UPDATE donor SET public_name_consent = NOT public_name_consent WHERE id = {id}",
    "UPDATE donor SET anonymous = NOT anonymous WHERE id = {id}",
])
def test_a_renamed_or_rekeyed_donor_is_named(api, database_url, executive, edit):
    assert _verify(api)["ok"] is True
    tamper_apart(database_url, edit.format(id=executive["id"]))
    report = _verify(api)
    assert report["ok"] is False and report["chain_ok"] is True
    assert _findings(report) == {("donor.identity", executive["id"], "content differs")}


def test_the_namesake_sidestep_is_caught(api, database_url, executive):
    """The sidestep itself: the executive's record is renamed so that a second record of
    the same person no longer matches, and that record's gift is accepted. Verification
    names the renamed record."""
    namesake = person(api, "Morgan Chen", "m.chen@elsewhere.example")
    assert gift(api, namesake["id"], "100.00", DAY)["status"] == "held"  # possible_match
    tamper_apart(database_url,
                 "UPDATE donor SET name = 'Pat Q', name_key_a = 'q', name_key_b = 'q', "
                 f"email_key = 'q@q.example' WHERE id = {executive['id']}")
    assert gift(api, namesake["id"], "100.00", DAY)["status"] == "accepted"
    assert ("donor.identity", executive["id"], "content differs") in _findings(_verify(api))


def test_a_donor_inserted_behind_the_apps_back_is_named_twice(api, db, database_url,
                                                              executive):
    tamper_apart(database_url,
                 "INSERT INTO donor (type, name, email, category, anonymous, created_at, "
                 "do_not_contact, email_ok, post_ok, phone_ok) SELECT type, 'Ghost', email, "
                 "category, anonymous, created_at, do_not_contact, email_ok, post_ok, phone_ok "
                 f"FROM donor WHERE id = {executive['id']}")
    ghost = _one(db, select(Donor.id).where(Donor.name == "Ghost"))
    assert _findings(_verify(api)) == {("donor", ghost, "no audit entry"),
                                       ("donor.identity", ghost, "no audit entry")}


def test_donor_changes_through_the_app_verify(app, api, executive):
    """Renamed, another e-mail, a phone and an address, as the donor page does (the
    matching keys follow), and donors imported in bulk: each seals who the donor is."""
    from app.ledger.parties import create_donors, update_donor
    from models.schemas import DonorCreate, DonorUpdate

    with app.extensions["armslength"].sessions() as session:
        update_donor(session, executive["id"], DonorUpdate(
            name="Morgan A. Chen", email="morgan.chen@halcyon.example", category="individual",
            phone="+1 555 0100", postal_address="1 Lab Road"), ADMIN)
        create_donors(session, [DonorCreate(type="person", name=f"Imported {i}",
                                            email=f"imported{i}@example.org")
                                for i in range(3)], ADMIN)
    report = _verify(api)
    assert report["ok"] is True, report["row_findings"]


def test_the_chain_holds_no_readable_identity(app, api, db, executive):
    """The donor's seals are in the chain, but neither the name nor the e-mail, and the
    identity seal is an HMAC under the seal key: a plain SHA-256 of the same canonical
    row (which anyone could compute from a guess) is not it."""
    entries = db.execute(select(AuditEntry.row_hashes, AuditEntry.data)).all()
    db.rollback()
    text = json.dumps([list(e) for e in entries])
    assert "Morgan" not in text and "morgan@halcyon" not in text
    seals = {(t, i): h for rows, _ in entries for t, i, h in (rows or [])}
    sealed = row_hashes.SEALED["donor.identity"]
    values = dict(db.get(Donor, executive["id"]).__dict__)
    db.rollback()
    canonical = row_hashes.canonical(sealed, values)
    seal = seals[("donor.identity", executive["id"])]
    assert seal != hashlib.sha256(canonical.encode()).hexdigest()
    assert seal == row_hashes.row_hash(sealed, values)
    # Under another key the same row seals otherwise: the key is what makes the seal.
    try:
        seal_key.configure(b"k" * 40)
        assert row_hashes.row_hash(sealed, values) != seal
    finally:
        seal_key.configure(None)


def test_verification_with_the_wrong_key_names_every_keyed_seal(app, api, database_url,
                                                                executive):
    """A deployment that lost or changed its seal key is told so, row by row, rather than
    quietly trusting."""
    try:
        seal_key.configure(b"another key that is long enough to be one")
        problems = {(t, p) for t, _, p in _findings(_verify(api))}
    finally:
        seal_key.configure(None)
    assert problems == {("donor.identity", "content differs"),
                        ("staff_user.password", "content differs")}


# Staff accounts: a password hash replaced, links slipped in or revived.

def _invite_and_join(app, email="new.reviewer@example.org", role="reviewer") -> int:
    from app.auth.links import invite_user, use_link

    with app.extensions["armslength"].sessions() as session:
        user, secret = invite_user(session, email, role, ADMIN)
        use_link(session, secret, "a long enough password")
        return user.id


def test_a_replaced_password_hash_is_named(app, api, db, database_url):
    """The insider's way to be the second person: a known password on a reviewer's account."""
    reviewer = _invite_and_join(app)
    assert _verify(api)["ok"] is True
    tamper_apart(database_url, (
        "UPDATE staff_user SET password_hash = :known WHERE id = :id",
        {"known": _one(db, select(User.password_hash).where(User.id == api.user_id)),
         "id": reviewer}))
    report = _verify(api)
    assert report["ok"] is False and report["chain_ok"] is True
    assert _findings(report) == {("staff_user.password", reviewer, "content differs")}


def test_a_link_slipped_in_is_named(app, api, db, database_url):
    reviewer = _invite_and_join(app)
    tamper_apart(database_url,
                 "INSERT INTO account_link (user_id, purpose, token_hash, created_at, "
                 f"expires_at) VALUES ({reviewer}, 'reset', '{'cd' * 32}', CURRENT_TIMESTAMP, "
                 "'2999-01-01 00:00:00')")
    forged = _one(db, select(AccountLink.id).where(AccountLink.token_hash == "cd" * 32))
    assert _findings(_verify(api)) == {("account_link", forged, "no audit entry")}


def test_a_used_link_revived_is_named(app, api, db, database_url):
    reviewer = _invite_and_join(app)
    link = _one(db, select(AccountLink.id).where(AccountLink.user_id == reviewer))
    tamper_apart(database_url, "UPDATE account_link SET used_at = NULL, "
                               f"expires_at = '2999-01-01 00:00:00' WHERE id = {link}")
    assert _findings(_verify(api)) == {("account_link", link, "content differs")}


def test_every_way_the_app_sets_a_password_verifies(app, api, monkeypatch):
    """Invited and joined by link, a reset link sent (cancelling an unused one), a reset
    link used, the password changed by its owner, reset by the operator, and a hash
    upgraded at sign-in (new Argon2 parameters): each seals what it wrote."""
    from argon2 import PasswordHasher

    from app.auth import passwords
    from app.auth.links import reset_link, set_password, use_link
    from app.auth.login import authenticate

    reviewer = _invite_and_join(app)
    sessions = app.extensions["armslength"].sessions
    with sessions() as session:
        reset_link(session, reviewer, ADMIN)
        _, secret = reset_link(session, reviewer, ADMIN)  # cancels the first
        use_link(session, secret, "another long password")
        owner = Actor("web:new.reviewer@example.org", user_id=reviewer, role="reviewer")
        set_password(session, reviewer, "a third long password", owner)
        set_password(session, reviewer, "the operator's password", Actor("cli", role="admin"))
    report = _verify(api)
    assert report["ok"] is True, report["row_findings"]

    with sessions() as session:
        before = session.get(User, reviewer).password_hash
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=2, memory_cost=16,
                                                             parallelism=1))
    with sessions() as session:
        signed_in = authenticate(session, "new.reviewer@example.org",
                                 "the operator's password", address="192.0.2.1")
        assert signed_in.user is not None
    with sessions() as session:
        after = session.get(User, reviewer).password_hash
        rehashed = session.execute(select(AuditEntry.id).where(
            AuditEntry.action == "user.password_rehashed")).scalars().all()
    assert after != before and len(rehashed) == 1
    report = _verify(api)
    assert report["ok"] is True, report["row_findings"]


# The seal key's settings.

def test_production_refuses_to_start_without_a_seal_key(tmp_path):
    settings = {"ARMSLENGTH_ENV": "production", "SECRET_KEY": "x" * 40}
    with pytest.raises(ConfigError, match="AUDIT_SEAL_KEY_FILE"):
        load_settings(settings, str(tmp_path))
    assert load_settings({**settings, "AUDIT_SEAL_KEY": "s" * 40}, str(tmp_path))
    assert load_settings({}, str(tmp_path))  # development: the public development key


def test_the_seal_key_file_is_read_and_checked(tmp_path):
    path = tmp_path / "seal.key"
    seal_key.generate_key_file(path)
    assert seal_key.load({"AUDIT_SEAL_KEY_FILE": str(path)}) == path.read_text().strip().encode()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(FileExistsError):
        seal_key.generate_key_file(path)
    with pytest.raises(seal_key.SealKeyError, match="at least 32"):
        seal_key.load({"AUDIT_SEAL_KEY": "short"})
    with pytest.raises(seal_key.SealKeyError, match="AUDIT_SEAL_KEY_FILE"):
        seal_key.load({"AUDIT_SEAL_KEY_FILE": str(tmp_path / "missing")})
    assert seal_key.load({}) is None


def test_an_account_changed_behind_the_apps_back_cannot_approve(api, api_as, db, database_url,
                                                                executive):
    """The insider's whole move: a known password hash on a reviewer's account, then that
    reviewer approves the insider's own change. The approval checks the approver's account
    against its latest seals and refuses; put back as it was, it approves."""
    reviewer = api_as("reviewer")
    [aff] = api.get(f"/donors/{executive['id']}").get_json()["affiliations"]
    pending = api.put(f"/affiliations/{aff['id']}", {
        "organization_id": aff["organization_id"], "kind": "employee", "title": aff["title"],
        "senior_decision_maker": True, "start_date": "2024-01-01", "end_date": "2025-01-01"})
    assert pending.status_code == 202, pending.get_json()
    change_id = pending.get_json()["change_id"]
    own = _one(db, select(User.password_hash).where(User.id == reviewer.user_id))
    known = _one(db, select(User.password_hash).where(User.id == api.user_id))
    tamper_apart(database_url, ("UPDATE staff_user SET password_hash = :known WHERE id = :id",
                                {"known": known, "id": reviewer.user_id}))
    refused = reviewer.post(f"/changes/{change_id}/approve", {})
    assert refused.status_code == 409, refused.get_json()  # as every refused approver
    assert "differs from what the audit trail last recorded" in refused.get_json()["error"]
    assert api.get(f"/changes/{change_id}").get_json()["status"] == "pending"

    tamper_apart(database_url, ("UPDATE staff_user SET password_hash = :own WHERE id = :id",
                                {"own": own, "id": reviewer.user_id}))
    approved = reviewer.post(f"/changes/{change_id}/approve", {})
    assert approved.status_code == 200, approved.get_json()
    report = _verify(api)
    assert report["ok"] is True, report["row_findings"]

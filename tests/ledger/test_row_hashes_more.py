"""The rows the policy depends on beyond money and affiliations (issue 12, issue 11 review):
identity verdicts, roster entries, donor merges, pending changes, staff accounts, pledges,
in-kind support, acknowledgements and online donations' declarations. Each is written
through the app (every write seals its rows: app.ledger.row_hashes), then edited directly
through a connection of its own (tests.tampering.tamper_apart), and verification must name
the row. On SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import select

from app.ledger import acknowledgements
from app.ledger.acknowledgements import Organisation
from models import (
    Acknowledgement,
    DonorMerge,
    IdentityVerdict,
    PendingChange,
    PledgeInstalment,
    RosterEntry,
)
from tests.builders import affiliate, gift, ok, organization, person
from tests.conftest import TEST_ACTOR
from tests.tampering import tamper_apart, upgrade_watermark

DAY = "2026-03-02"

ROSTER = ("name,title,organisation,start,end,source\n"
          "Avery Stone,Chief Scientist,Halcyon Labs,2024-01-01,,halcyon leadership page\n")


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


@dataclass
class Scene:
    admin_id: int
    reviewer_id: int
    verdict_id: int
    roster_id: int
    merged_id: int
    change_id: int
    pledge_id: int
    instalment_id: int
    in_kind_id: int
    acknowledgement_id: int


@pytest.fixture
def scene(api, api_as, db) -> Scene:
    """One of each newly sealed row, written through the API and the ledger's services."""
    reviewer = api_as("reviewer")
    lab = organization(api, "Halcyon Labs", covered_lab=True)
    vp = person(api, "Morgan Chen", "morgan@halcyon.example")
    affiliate(api, vp["id"], lab["id"], start="2024-01-01", senior=True,
              title="Vice President of Research")
    namesake = person(api, "Morgan Chen", "other.morgan@example.net")
    assert gift(api, namesake["id"], "100.00", DAY)["status"] == "held"  # possible_match
    verdict = ok(reviewer.post(f"/donors/{namesake['id']}/matches/different", {
        "record": "donor", "record_id": vp["id"], "reason": "different birth dates"}))
    roster = api.client.post("/api/v1/rosters", data=ROSTER.encode(),
                             headers={**api.headers, "Content-Type": "text/csv"})
    assert roster.status_code == 201, roster.get_json()
    ana, dup = person(api, "Ana"), person(api, "Ana B.")
    ok(reviewer.post(f"/donors/{ana['id']}/merge", {"duplicate_id": dup["id"]}), 200)
    # Ending the VP's open affiliation weakens the facts: it waits for a second person.
    [aff] = api.get(f"/donors/{vp['id']}").get_json()["affiliations"]
    pending = ok(api.put(f"/affiliations/{aff['id']}", {
        "organization_id": lab["id"], "kind": "employee", "title": aff["title"],
        "senior_decision_maker": True, "start_date": "2024-01-01", "end_date": "2025-01-01"}),
        202)
    pledge = ok(api.post("/pledges", {"donor_id": ana["id"], "amount": "300.00",
                                      "currency": "USD", "pledged_on": DAY}))
    in_kind = ok(api.post("/in-kind", {"organization_id": lab["id"], "description": "API access",
                                       "purpose": "evaluation", "start_date": DAY}))
    big = gift(api, ana["id"], "500.00", DAY)
    letter = acknowledgements.gift_letter(db, big["id"], Organisation("Org"), date(2026, 3, 3))
    acknowledgements.record_sent(db, letter, "ana@example.org", TEST_ACTOR, channel="post")
    return Scene(
        admin_id=api.user_id, reviewer_id=reviewer.user_id, verdict_id=verdict["id"],
        roster_id=_one(db, select(RosterEntry.id)), merged_id=dup["id"],
        change_id=pending["change_id"], pledge_id=pledge["id"],
        instalment_id=_one(db, select(PledgeInstalment.id)), in_kind_id=in_kind["id"],
        acknowledgement_id=_one(db, select(Acknowledgement.id)))


def test_the_new_rows_written_through_the_app_verify(api, scene):
    report = _verify(api)
    assert report["ok"] is True, report["row_findings"]
    assert {f["table"] for f in report["row_findings"]} == set()


@pytest.mark.parametrize(("table", "edit", "attr"), [
    # A reviewer's "different people" turned around, or a verdict slipped in: both silence or
    # change what the possible_match rule says.
    ("identity_verdict", "UPDATE identity_verdict SET reason = 'edited' WHERE id = {id}",
     "verdict_id"),
    ("roster_entry",
     "UPDATE roster_entry SET senior_decision_maker = NOT senior_decision_maker WHERE id = {id}",
     "roster_id"),
    ("roster_entry", "UPDATE roster_entry SET end_date = '2024-01-02' WHERE id = {id}",
     "roster_id"),
    ("pending_change", "UPDATE pending_change SET proposed_by_id = {reviewer} WHERE id = {id}",
     "change_id"),
    ("staff_user", "UPDATE staff_user SET role_since = '2020-01-01 00:00:00' WHERE id = {id}",
     "reviewer_id"),
    ("staff_user", "UPDATE staff_user SET role = 'admin' WHERE id = {id}", "reviewer_id"),
    ("staff_user", "UPDATE staff_user SET active = false WHERE id = {id}", "reviewer_id"),
    ("staff_user", "UPDATE staff_user SET totp_secret = 'JBSWY3DPEHPK3PXP' WHERE id = {id}",
     "admin_id"),
    ("pledge", "UPDATE pledge SET amount_minor = 1 WHERE id = {id}", "pledge_id"),
    ("pledge_instalment", "UPDATE pledge_instalment SET due_on = '2030-01-01' WHERE id = {id}",
     "instalment_id"),
    ("in_kind_arrangement",
     "UPDATE in_kind_arrangement SET purpose = 'research' WHERE id = {id}", "in_kind_id"),
    ("acknowledgement",
     "UPDATE acknowledgement SET goods_value_minor = 100 WHERE id = {id}", "acknowledgement_id"),
])
def test_an_edited_row_is_named(api, database_url, scene, table, edit, attr):
    row_id = getattr(scene, attr)
    tamper_apart(database_url, edit.format(id=row_id, reviewer=scene.reviewer_id))
    report = _verify(api)
    assert report["ok"] is False and report["chain_ok"] is True
    assert _findings(report) == {(table, row_id, "content differs")}


def test_a_forged_verdict_is_named(api, db, database_url, scene):
    """The insider does not edit the reviewer's verdict: they add one of their own."""
    tamper_apart(database_url,
                 "INSERT INTO identity_verdict (pair, donor_id, verdict, reason, decided_at) "
                 "SELECT pair || 'x', donor_id, 'different', 'forged', decided_at "
                 f"FROM identity_verdict WHERE id = {scene.verdict_id}")
    forged = _one(db, select(IdentityVerdict.id).order_by(IdentityVerdict.id.desc()).limit(1))
    assert _findings(_verify(api)) == {("identity_verdict", forged, "no audit entry")}


def test_an_approved_change_forged_in_place_is_named(api, db, database_url, scene):
    tamper_apart(database_url,
                 "UPDATE pending_change SET state = 'approved', "
                 f"decided_by_id = {scene.reviewer_id} WHERE id = {scene.change_id}")
    assert _one(db, select(PendingChange.state)) == "approved"
    assert _findings(_verify(api)) == {("pending_change", scene.change_id, "content differs")}


def test_a_deleted_or_repointed_merge_is_named(api, database_url, scene):
    tamper_apart(database_url, f"DELETE FROM donor_merge WHERE duplicate_id = {scene.merged_id}")
    assert _findings(_verify(api)) == {("donor_merge", scene.merged_id, "row gone")}


def test_a_merge_row_slipped_in_is_named(api, db, database_url, scene):
    """Merging a lab employee's record into a clean one behind the app's back."""
    other = person(api, "Someone Clean")
    victim = person(api, "Lab Person")
    tamper_apart(database_url,
                 "INSERT INTO donor_merge (duplicate_id, survivor_id, merged_at) "
                 f"VALUES ({victim['id']}, {other['id']}, CURRENT_TIMESTAMP)")
    assert _one(db, select(DonorMerge.survivor_id).where(
        DonorMerge.duplicate_id == victim["id"])) == other["id"]
    assert _findings(_verify(api)) == {("donor_merge", victim["id"], "no audit entry")}


def test_a_staff_account_made_behind_the_apps_back_is_named(api, db, database_url, scene):
    tamper_apart(database_url,
                 "INSERT INTO staff_user (email, password_hash, role, active, session_nonce, "
                 "created_at, role_since) SELECT 'ghost@example.org', password_hash, 'reviewer', "
                 "active, 'n', created_at, '2020-01-01 00:00:00' FROM staff_user "
                 f"WHERE id = {scene.admin_id}")
    from models import User

    ghost = _one(db, select(User.id).where(User.email == "ghost@example.org"))
    # Its password hash has a (keyed) seal of its own, missing as well.
    assert _findings(_verify(api)) == {("staff_user", ghost, "no audit entry"),
                                       ("staff_user.password", ghost, "no audit entry")}


def test_account_changes_through_the_app_still_verify(app, api, web_as, scene):
    """Role changes, deactivation, reactivation, a second factor enrolled, a password set by
    the operator with the second factor cleared: each re-seals the account."""
    import pyotp

    from app.auth.links import set_password
    from app.auth.second_factor import enrol, start_enrolment
    from app.auth.users import change_role, deactivate_user, reactivate_user
    from app.ledger.audit import Actor

    admin = Actor("api:admin@example.org", user_id=scene.admin_id, role="admin")
    with app.extensions["armslength"].sessions() as session:
        change_role(session, scene.reviewer_id, "finance", admin)
        deactivate_user(session, scene.reviewer_id, admin)
        reactivate_user(session, scene.reviewer_id, admin)
        secret = start_enrolment(session, scene.reviewer_id)  # outside the lock: not sealed
        enrol(session, scene.reviewer_id, pyotp.TOTP(secret).now(), admin)
        assert _verify(api)["ok"] is True
        set_password(session, scene.reviewer_id, "another long password", admin,
                     clear_second_factor=True)
    web_as("viewer")  # invited and established through the helpers
    report = _verify(api)
    assert report["ok"] is True, report["row_findings"]


def _insert_pledge_like(scene, amount: int, row_id: int | None = None) -> str:
    columns = "donor_id, amount_minor, currency, pledged_on, state, created_at"
    if row_id is None:
        return (f"INSERT INTO pledge ({columns}) SELECT donor_id, {amount}, currency, "
                f"pledged_on, state, created_at FROM pledge WHERE id = {scene.pledge_id}")
    return (f"INSERT INTO pledge (id, {columns}) SELECT {row_id}, donor_id, {amount}, "
            f"currency, pledged_on, state, created_at FROM pledge WHERE id = {scene.pledge_id}")


def test_seal_rows_seals_only_rows_the_upgrade_found(app, api, db, database_url, scene):
    """Rows written before their table was sealed have no entry (here: rows inserted with
    none before the upgrade) until `armslength seal-rows` seals them. A row inserted
    behind the app's back after the upgrade stays a finding: seal-rows lists it and does
    not seal it, so it cannot launder an insider's row. A row that differs from its entry
    is never re-sealed."""
    from models import Pledge, User

    tamper_apart(database_url, _insert_pledge_like(scene, 100),
                 "INSERT INTO staff_user (email, password_hash, role, active, session_nonce, "
                 "created_at, role_since) SELECT 'older@example.org', password_hash, 'viewer', "
                 f"active, 'n', created_at, role_since FROM staff_user WHERE id = {scene.admin_id}",
                 f"UPDATE roster_entry SET end_date = '2024-01-02' WHERE id = {scene.roster_id}")
    older_pledge = _one(db, select(Pledge.id).order_by(Pledge.id.desc()).limit(1))
    older_user = _one(db, select(User.id).where(User.email == "older@example.org"))
    upgrade_watermark(database_url)
    tamper_apart(database_url, _insert_pledge_like(scene, 999_999))  # after the upgrade
    newer_pledge = _one(db, select(Pledge.id).where(Pledge.amount_minor == 999_999))
    before = _verify(api)
    assert before["chain_ok"] is True  # the upgrade's entry is a proper link of the chain
    assert _findings(before) == {("pledge", older_pledge, "no audit entry"),
                                 ("pledge", newer_pledge, "no audit entry"),
                                 ("staff_user", older_user, "no audit entry"),
                                 ("staff_user.password", older_user, "no audit entry"),
                                 ("roster_entry", scene.roster_id, "content differs")}
    result = app.test_cli_runner().invoke(args=["seal-rows"])
    assert result.exit_code == 1, result.output
    assert result.stdout.strip() == "sealed 3 rows that had no audit entry"
    assert f"pledge {newer_pledge}: written after the upgrade" in result.stderr
    report = _verify(api)
    assert report["chain_ok"] is True
    assert _findings(report) == {("pledge", newer_pledge, "no audit entry"),
                                 ("roster_entry", scene.roster_id, "content differs")}
    # Run again: nothing more is sealed, the inserted row is still refused.
    again = app.test_cli_runner().invoke(args=["seal-rows"])
    assert again.exit_code == 1 and again.stdout.strip() == "sealed 0 rows that had no audit entry"
    assert _findings(_verify(api)) == _findings(report)


def test_seal_rows_without_an_upgrades_watermark_seals_nothing(app, api, db, database_url,
                                                               scene):
    from models import Pledge

    tamper_apart(database_url, _insert_pledge_like(scene, 100))
    inserted = _one(db, select(Pledge.id).order_by(Pledge.id.desc()).limit(1))
    result = app.test_cli_runner().invoke(args=["seal-rows"])
    assert result.exit_code == 1
    assert result.stdout.strip() == "sealed 0 rows that had no audit entry"
    assert _findings(_verify(api)) == {("pledge", inserted, "no audit entry")}


def test_a_row_slipped_below_the_watermark_or_a_raised_watermark_is_refused(
        app, api, db, database_url, scene):
    """Two ways around the watermark: a row inserted into a gap of the ids below it (the
    table then holds more rows up to it than the upgrade counted), and a watermark entry of
    the insider's own appended later with a higher id (the lowest one counts)."""
    from models import Pledge

    gap_top = scene.pledge_id + 10
    tamper_apart(database_url, _insert_pledge_like(scene, 100, gap_top))  # before the upgrade
    upgrade_watermark(database_url)
    tamper_apart(database_url, _insert_pledge_like(scene, 555, scene.pledge_id + 3),
                 _insert_pledge_like(scene, 777, gap_top + 1))
    upgrade_watermark(database_url)  # the insider's: it counts gap_top + 1
    in_gap = _one(db, select(Pledge.id).where(Pledge.amount_minor == 555))
    result = app.test_cli_runner().invoke(args=["seal-rows"])
    assert result.exit_code == 1
    assert result.stdout.strip() == "sealed 0 rows that had no audit entry"
    assert f"pledge {in_gap}: its table has more rows" in result.stderr
    assert f"pledge {gap_top + 1}: written after the upgrade" in result.stderr
    assert _findings(_verify(api)) == {("pledge", gap_top, "no audit entry"),
                                       ("pledge", in_gap, "no audit entry"),
                                       ("pledge", gap_top + 1, "no audit entry")}


def test_an_api_token_slipped_in_for_a_reviewer_is_named(api, db, database_url, scene):
    """Review finding: with a token row of their own making for a reviewer, one insider could
    approve their own change through the API as that reviewer. The row has no entry."""
    from models import ApiToken

    tamper_apart(database_url,
                 "INSERT INTO api_token (user_id, name, token_hash, created_at) VALUES "
                 f"({scene.reviewer_id}, 'api', '{'ab' * 32}', CURRENT_TIMESTAMP)")
    forged = _one(db, select(ApiToken.id).where(ApiToken.token_hash == "ab" * 32))
    assert _findings(_verify(api)) == {("api_token", forged, "no audit entry")}


def test_a_revoked_token_revived_in_place_is_named(api, api_as, db, database_url, scene):
    from models import ApiToken

    viewer = api_as("viewer")
    token_id = _one(db, select(ApiToken.id).where(ApiToken.user_id == viewer.user_id))
    from app.auth.users import revoke_token  # as the admin page does

    with api.client.application.extensions["armslength"].sessions() as session:
        revoke_token(session, token_id, TEST_ACTOR)
    assert _verify(api)["ok"] is True
    tamper_apart(database_url, f"UPDATE api_token SET revoked_at = NULL WHERE id = {token_id}")
    assert _findings(_verify(api)) == {("api_token", token_id, "content differs")}


def test_an_open_affiliation_ended_at_infinity_is_named(api, db, database_url, scene):
    """Review finding: PostgreSQL's to_char('infinity') is NULL; the database-side hash must
    not read 'infinity' as the sealed NULL of an open affiliation's end date."""
    from models import Affiliation

    open_one = _one(db, select(Affiliation.id).where(Affiliation.end_date.is_(None))
                    .order_by(Affiliation.id).limit(1))
    tamper_apart(database_url,
                 f"UPDATE affiliation SET end_date = 'infinity' WHERE id = {open_one}")
    assert ("affiliation", open_one, "content differs") in _findings(_verify(api))

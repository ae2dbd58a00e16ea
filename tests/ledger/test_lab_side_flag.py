"""donor.possibly_covered: the flag that puts a record in the possible-match lookup's partial
key indexes (app.ledger.identity). It is derived from affiliations and organisations, so
every write of them keeps it (each tested here through the API, the two-person ones after
their approval), and verification recomputes it: a flag set by hand, which would hide a lab
executive from every namesake's screening, is reported. On SQLite and PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy import event, select

from app.ledger.identity import MatchFinder, possibly_covered_tie
from models import Donor
from tests.builders import affiliate, gift, ok, organization, person
from tests.tampering import tamper_apart

ON = "2026-03-02"


def _flags(db) -> dict[int, tuple[bool, bool]]:
    """Every donor's (stored flag, the flag recomputed from its affiliations)."""
    db.rollback()
    try:
        return {donor_id: (bool(stored), bool(derived)) for donor_id, stored, derived in
                db.execute(select(Donor.id, Donor.possibly_covered,
                                  possibly_covered_tie(Donor.id)))}
    finally:
        db.rollback()


def _check(db, **expected: tuple[dict, bool]) -> None:
    """Every donor's flag equals its recomputation, and the named ones are as expected."""
    flags = _flags(db)
    assert all(stored == derived for stored, derived in flags.values()), flags
    assert {name: flags[donor["id"]][0] for name, (donor, _) in expected.items()} == {
        name: want for name, (_, want) in expected.items()}


def _approve(api_as, response) -> None:
    assert response.status_code == 202, response.get_json()
    ok(api_as("reviewer").post(f"/changes/{response.get_json()['change_id']}/approve"), 200)


def test_every_write_of_affiliations_and_organisations_keeps_the_flag(api_as, db):
    admin = api_as("admin")
    fundraiser = api_as("fundraiser")
    lab = organization(admin, "Halcyon Labs", covered_lab=True)
    foundation = organization(admin, "Halcyon Foundation", parent_id=lab["id"])
    plain = organization(admin, "Plain Corp")
    morgan, ana, bo = person(admin, "Morgan Chen"), person(admin, "Ana Ruiz"), person(admin, "Bo Li")
    _check(db, morgan=(morgan, False), ana=(ana, False), bo=(bo, False))

    vp = affiliate(admin, morgan["id"], lab["id"], senior=True, title="Vice President")
    affiliate(admin, ana["id"], plain["id"])
    affiliate(admin, bo["id"], foundation["id"])  # an affiliate of a lab: covered through it
    _check(db, morgan=(morgan, True), ana=(ana, False), bo=(bo, True))

    # Marking a lab covered tightens: at once.
    ok(fundraiser.patch(f"/organizations/{plain['id']}", {"covered_lab": True}), 200)
    _check(db, ana=(ana, True))
    # Uncovering it weakens: nothing changes until a second person approves.
    response = fundraiser.patch(f"/organizations/{plain['id']}", {"covered_lab": False})
    _check(db, ana=(ana, True))
    _approve(api_as, response)
    _check(db, ana=(ana, False))

    # An affiliate's parent removed (two-person), then set again (at once).
    _approve(api_as, fundraiser.patch(f"/organizations/{foundation['id']}", {"parent_id": None}))
    _check(db, bo=(bo, False))
    ok(fundraiser.patch(f"/organizations/{foundation['id']}", {"parent_id": lab["id"]}), 200)
    _check(db, bo=(bo, True))

    # An affiliation moved away from the lab, and back.
    body = {"organization_id": plain["id"], "kind": "employee", "title": "Vice President",
            "senior_decision_maker": True, "start_date": "2020-01-01", "end_date": None}
    _approve(api_as, fundraiser.put(f"/affiliations/{vp['id']}", body))
    _check(db, morgan=(morgan, False))
    ok(fundraiser.put(f"/affiliations/{vp['id']}", {**body, "organization_id": lab["id"]}), 200)
    _check(db, morgan=(morgan, True))
    # Ended: still the same record a namesake must be compared with (cooling-off, dates).
    _approve(api_as, fundraiser.put(f"/affiliations/{vp['id']}", {
        **body, "organization_id": lab["id"], "end_date": "2021-01-01"}))
    _check(db, morgan=(morgan, True))
    # Deleted (recorded in error): two-person at a covered lab.
    _approve(api_as, fundraiser.delete(f"/affiliations/{vp['id']}"))
    _check(db, morgan=(morgan, False))

    # A merge moves the duplicate's affiliations to the survivor.
    dup = person(admin, "Morgan Chen B.")
    affiliate(admin, dup["id"], lab["id"])
    _check(db, dup=(dup, True), morgan=(morgan, False))
    ok(api_as("reviewer").post(f"/donors/{morgan['id']}/merge", {"duplicate_id": dup["id"]}),
       200)
    _check(db, dup=(dup, False), morgan=(morgan, True))


def test_a_flag_cleared_by_hand_is_reported_by_verification(app, api, api_as, db, database_url,
                                                           web_as):
    admin = api_as("admin")
    lab = organization(admin, "Halcyon Labs", covered_lab=True)
    vp = person(admin, "Morgan Chen")
    affiliate(admin, vp["id"], lab["id"], senior=True, title="Vice President")
    namesake = person(admin, "Morgan Chen")
    assert gift(admin, namesake["id"], "100.00", ON)["status"] == "held"  # possible_match
    assert ok(api.get("/audit/verify"), 200)["ok"] is True

    # What an insider gains by clearing it: the executive is no longer a namesake's match.
    tamper_apart(database_url, f"UPDATE donor SET possibly_covered = "
                               f"{'false' if 'postgresql' in database_url else '0'} "
                               f"WHERE id = {vp['id']}")
    assert gift(admin, namesake["id"], "100.00", ON)["status"] == "accepted"
    # ...and what verification says about it.
    report = ok(api.get("/audit/verify"), 200)
    assert report["ok"] is False and report["rows_ok"] is True and report["chain_ok"] is True
    assert report["problem"] == ("donors' lab-side flags (possibly_covered) do not match "
                                 "their affiliations")
    assert report["derived_findings"] == [{"table": "donor", "key": str(vp["id"]),
                                           "stored": {"possibly_covered": False},
                                           "recomputed": {"possibly_covered": True}}]
    result = app.test_cli_runner().invoke(args=["verify-audit"])
    assert result.exit_code == 1
    assert f"donor {vp['id']}: possibly_covered False (recomputed True)" in result.stderr
    html = web_as("viewer").get("/staff/audit/verify").get_data(as_text=True)
    assert "1 donor's lab-side flag (possibly_covered) differs from their affiliations" in html


def test_a_flag_set_by_hand_is_reported_too(api, api_as, database_url):
    plain = person(api_as("admin"), "Ana Ruiz")
    tamper_apart(database_url, f"UPDATE donor SET possibly_covered = "
                               f"{'true' if 'postgresql' in database_url else '1'} "
                               f"WHERE id = {plain['id']}")
    report = ok(api.get("/audit/verify"), 200)
    assert report["ok"] is False
    assert [f["key"] for f in report["derived_findings"]] == [str(plain["id"])]


def test_the_lookup_reads_only_lab_side_keys(api, db):
    """The candidates' statement is answered from the partial indexes of lab-side records
    (SQLite's plan; PostgreSQL's with scans priced out, as the table is small)."""
    lab = organization(api, "Halcyon Labs", covered_lab=True)
    employee = person(api, "Morgan Chen")
    affiliate(api, employee["id"], lab["id"])
    other = person(api, "Morgan Chen")
    db.rollback()
    other = db.get(Donor, other["id"])
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM donor" in statement and "name_key_a" in statement:
            statements.append((statement, parameters))

    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        [match] = MatchFinder(db)(other)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert match.record_id == employee["id"]
    [(statement, parameters)] = statements
    conn = db.connection()
    if conn.dialect.name == "sqlite":
        plan = " | ".join(row[-1] for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement, parameters).all())
    else:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = " | ".join(row[0] for row in conn.exec_driver_sql(
            "EXPLAIN " + statement, parameters).all())
    assert "ix_donor_name_key_a_lab_side" in plan and "ix_donor_name_key_b_lab_side" in plan, plan

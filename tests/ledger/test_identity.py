"""Identity matching in the ledger: the finder (indexed queries, one screening) and the
index (a batch's, in memory) find the same records; blocking keys follow donor edits;
the CSV import's dry run lists probable matches and its import holds their gifts."""

from __future__ import annotations

import random
from datetime import date

import pytest
from sqlalchemy import event, select

from app.db.locking import ledger_batch
from app.ledger.audit import Actor
from app.ledger.csv_import import KINDS, CsvImport
from app.ledger.gifts import record_gift
from app.ledger.identity import MatchFinder, MatchIndex, covered_lab_named
from app.ledger.intake import GiftIntake
from app.ledger.parties import (
    add_affiliation,
    create_donor,
    create_organization,
    update_donor,
)
from models import Decision, Donor, Gift
from models.schemas import AffiliationCreate, DonorCreate, DonorUpdate, GiftCreate, OrganizationCreate

ACTOR = Actor("test")
FIRST = ["Morgan", "Avery", "Riley", "Jordan", "Casey", "Taylor", "Jamie", "Robin"]
LAST = ["Chen", "Stone", "Park", "Nguyen", "Okafor", "Müller", "García", "Smith"]


def _lab(db, name="Halcyon Labs", aliases=()):
    return create_organization(db, OrganizationCreate(name=name, covered_lab=True,
                                                      aliases=list(aliases)), ACTOR).id


def _person(db, name, email=None, phone=None):
    return create_donor(db, DonorCreate(type="person", name=name, email=email, phone=phone),
                        ACTOR)


def _employ(db, policy, donor_id, org_id, start=date(2020, 1, 1)):
    add_affiliation(db, donor_id, AffiliationCreate(organization_id=org_id,
                                                    senior_decision_maker=False,
                                                    start_date=start), ACTOR, policy)


def test_the_finder_and_the_batch_index_find_the_same_records(db, policy):
    rng = random.Random(11)
    lab = _lab(db)
    plain = create_organization(db, OrganizationCreate(name="Plain Corp"), ACTOR).id
    donors = []
    for _ in range(120):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        name = rng.choice([f"{first} {last}", f"{last}, {first}", f"{first[0]}. {last}",
                           f"{first} {last[:-1]}{'x'}"])
        donor = _person(db, name, email=f"p{len(donors)}@example.org",
                        phone=f"+1 415 555 {rng.randrange(30):04d}")
        donors.append(donor.id)
        if rng.random() < 0.3:
            _employ(db, policy, donor.id, rng.choice([lab, plain]))
    finder, index = MatchFinder(db), MatchIndex(db)
    found = 0
    for donor_id in donors:
        donor = db.get(Donor, donor_id)
        assert finder(donor) == index(donor), donor.name
        found += len(finder(donor))
    assert found > 50  # the world has plenty of candidates: the comparison means something


def test_blocking_keys_follow_the_donor(db, policy):
    lab = _lab(db)
    employee = _person(db, "Morgan Chen")
    _employ(db, policy, employee.id, lab)
    other = _person(db, "Alice Wong")
    assert MatchFinder(db)(other) == ()
    update_donor(db, other.id, DonorUpdate(name="Morgan Chen", category="individual"), ACTOR)
    [match] = MatchFinder(db)(db.get(Donor, other.id))
    assert (match.record_id, match.name_similarity) == (employee.id, 1)


def test_matching_reads_donors_by_index_not_by_scan(db, policy):
    """The candidates' query is answered from the blocking-key indexes: SQLite's plan; on
    PostgreSQL, whose planner scans a table this small, the plan with scans priced out
    (enable_seqscan off) must use the indexes, so they exist and serve this query."""
    lab = _lab(db)
    employee = _person(db, "Morgan Chen", email="m@example.org", phone="4155550100")
    _employ(db, policy, employee.id, lab)
    other = _person(db, "Morgan Chen", email="x@example.org", phone="4155550199")
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM donor" in statement and "name_key_a" in statement:
            statements.append((statement, parameters))

    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        assert MatchFinder(db)(other)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    [(statement, parameters)] = [s for s in statements if "WHERE" in s[0]]
    conn = db.connection()
    if conn.dialect.name == "sqlite":
        plan = " | ".join(row[-1] for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement, parameters).all())
        assert "SCAN donor" not in plan, plan
    else:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = " | ".join(row[0] for row in conn.exec_driver_sql(
            "EXPLAIN " + statement, parameters).all())
        assert "Seq Scan on donor" not in plan, plan
    assert "ix_donor_name_key_a" in plan and "ix_donor_email_key" in plan, plan


def test_employer_text_names_a_covered_lab_loosely(db):
    lab = _lab(db, aliases=["Halcyon"])
    create_organization(db, OrganizationCreate(name="Halcyon Health"), ACTOR)
    for typed in ("Halcyon Labs, Inc.", "halcyon labs", "HALCYON LABS LLC", "Halcyon"):
        assert covered_lab_named(db, typed) == lab, typed
    for typed in ("Halcyon Health", "Labs", "", None):
        assert covered_lab_named(db, typed) is None, typed


def test_a_batch_holds_a_gift_of_a_probable_match_as_the_door_does(db, policy):
    lab = _lab(db)
    employee = _person(db, "Morgan Chen")
    _employ(db, policy, employee.id, lab)
    second = _person(db, "Chen, Morgan")
    db.commit()
    with ledger_batch(db), GiftIntake(db, ACTOR, policy, "USD") as intake:
        screened = intake.record(GiftCreate(donor_id=second.id, amount="50.00", currency="USD",
                                            received_on=date(2026, 3, 1)))
    assert screened.evaluation.outcome == "hold"
    assert [f.rule for f in screened.evaluation.fired] == ["possible_match"]


def _gift_outcome(db, policy, donor_id):
    made = record_gift(db, GiftCreate(donor_id=donor_id, amount="50.00", currency="USD",
                                      received_on=date(2026, 3, 1)), ACTOR, policy, "USD",
                       dry_run=True)
    db.rollback()
    return made.evaluation


@pytest.mark.parametrize(("lab_name", "other_name"), [("Morgan Chen", "M. Chen"),
                                                      ("M. Chen", "Morgan Chen"),
                                                      ("Chen, M.", "Morgan Chen")])
@pytest.mark.parametrize("evidence", ["phone", "address", None])
def test_an_initial_and_a_surname_that_agree_with_evidence_are_a_possible_match(
        db, policy, lab_name, other_name, evidence):
    """Issue 11: "M. Chen" and "Morgan Chen" share no plain blocking key, and their names
    alone are not alike enough (0.909 < 0.92); with the same phone or postal address they
    are a possible match, found from either side by the finder and the batch's index alike,
    and the door holds the gift, saying why."""
    lab = _lab(db)
    phone = "+1 415 555 0100" if evidence == "phone" else None
    address = "1 Main St, Springfield" if evidence == "address" else None
    employee = create_donor(db, DonorCreate(type="person", name=lab_name, email="m@lab.example",
                                            phone=phone, postal_address=address), ACTOR)
    _employ(db, policy, employee.id, lab)
    other = create_donor(db, DonorCreate(type="person", name=other_name,
                                         email="morgan@home.example",
                                         phone="415.555.0100" if phone else None,
                                         postal_address="1 main st springfield"
                                         if address else None), ACTOR)
    db.commit()
    me = db.get(Donor, other.id)
    [fact] = MatchFinder(db)(me)
    assert (fact.record_id, fact.same_initial) == (employee.id, True)
    assert MatchIndex(db)(me) == (fact,)
    evaluation = _gift_outcome(db, policy, other.id)
    if evidence is None:
        assert evaluation.outcome == "accept"
        return
    assert evaluation.outcome == "hold"
    [finding] = [f for f in evaluation.fired if f.rule == "possible_match"]
    assert "the surname and the initial of the given name agree, and the same" in finding.message
    assert evaluation.figures["possible_matches"][0]["score"] == "0.959"


def test_another_initial_is_not_found_by_the_name(db, policy):
    lab = _lab(db)
    employee = _person(db, "Morgan Chen", phone="4155550100")
    _employ(db, policy, employee.id, lab)
    other = _person(db, "A. Chen", email="a@home.example")
    assert MatchFinder(db)(db.get(Donor, other.id)) == ()


def _files(tmp_path, donors: str, affiliations: str, gifts: str) -> None:
    (tmp_path / "donors.csv").write_text(donors)
    (tmp_path / "affiliations.csv").write_text(affiliations)
    (tmp_path / "gifts.csv").write_text(gifts)


def _check(db, tmp_path, policy=None) -> CsvImport:
    job = CsvImport(db, today=date(2026, 6, 30), reporting_currency="USD", policy=policy)
    job.__enter__()
    for kind in KINDS:
        with (tmp_path / f"{kind}.csv").open("rb") as stream:
            job.check(kind, stream)
    return job


def test_the_dry_run_lists_donors_probably_on_file_with_a_lab_role(db, policy, tmp_path):
    lab = _lab(db)
    vp = _person(db, "Morgan Chen", email="morgan@halcyon.example", phone="415-555-0100")
    _employ(db, policy, vp.id, lab)
    db.commit()
    _files(tmp_path,
           "external_id,type,name,email,phone\nD1,person,Morgan Chen,mc@gmail.example,\n"
           "D2,person,Dana Donor,,\nD3,person,Chen Morgen,,+1 415 555 0100\n",
           "donor_external_id,organization,senior_decision_maker,start_date\n",
           "external_ref,donor_external_id,amount,currency,received_on\n"
           "G1,D1,100.00,USD,2026-03-01\nG2,D2,100.00,USD,2026-03-01\n"
           "G3,D3,100.00,USD,2026-03-01\n")
    job = _check(db, tmp_path, policy)
    try:
        assert job.errors == []
        assert [(w.file, w.line) for w in job.warnings] == [("donors", 2), ("donors", 4)]
        assert f"donor {vp.id} Morgan Chen" in job.warnings[0].message
        assert "possible_match" in job.warnings[0].message
        result = job.run(ACTOR, policy, files={k: f"{k}.csv" for k in KINDS})
    finally:
        job.__exit__(None, None, None)
    assert dict(result.outcomes) == {"hold": 2, "accept": 1}
    held = db.execute(select(Gift.external_ref).where(Gift.status == "held")
                      .order_by(Gift.external_ref)).scalars().all()
    assert held == ["G1", "G3"]


def test_the_import_matches_donors_against_its_own_lab_affiliations(db, policy, tmp_path):
    """A lab employee and a second record of them in the same upload: the affiliations are
    written before the gifts are screened, so the second record's gifts are held."""
    _lab(db, "Halcyon Labs")
    db.commit()
    _files(tmp_path,
           "external_id,type,name\nD1,person,Avery Stone\nD2,person,Stone Avery\n",
           "donor_external_id,organization,senior_decision_maker,start_date\n"
           "D1,\"Halcyon Labs, Inc.\",false,2020-01-01\n",
           "external_ref,donor_external_id,amount,currency,received_on\n"
           "G1,D2,100.00,USD,2026-03-01\n")
    job = _check(db, tmp_path, policy)
    try:
        assert job.errors == []
        result = job.run(ACTOR, policy, files={k: f"{k}.csv" for k in KINDS})
    finally:
        job.__exit__(None, None, None)
    assert dict(result.outcomes) == {"hold": 1}
    decision = db.execute(select(Decision).order_by(Decision.id.desc()).limit(1)).scalar_one()
    assert [r["rule"] for r in decision.reasons if r["fired"]] == ["possible_match"]


def test_without_a_policy_the_check_lists_no_matches(db, policy, tmp_path):
    lab = _lab(db)
    vp = _person(db, "Morgan Chen")
    _employ(db, policy, vp.id, lab)
    db.commit()
    _files(tmp_path, "external_id,type,name\nD1,person,Morgan Chen\n",
           "donor_external_id,organization,senior_decision_maker,start_date\n",
           "external_ref,donor_external_id,amount,currency,received_on\n")
    job = _check(db, tmp_path)
    try:
        assert job.errors == [] and job.warnings == []
    finally:
        job.__exit__(None, None, None)

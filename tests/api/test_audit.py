"""The hash-chained audit trail: every write appends one entry; verify finds any tampering."""

from __future__ import annotations

from sqlalchemy import select

from models import AuditEntry
from tests.api.helpers import count
from tests.builders import World, affiliate, gift, ok, org_donor, organization, person
from tests.tampering import tamper

DAY = "2026-03-01"


def _last(db) -> tuple:
    try:
        entry = db.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).scalar_one()
        return entry.action, entry.entity_type, entry.entity_id, entry.actor, dict(entry.data)
    finally:
        db.rollback()


def _verify(api) -> dict:
    response = api.get("/audit/verify")
    assert response.status_code == 200
    return response.get_json()


def test_every_create_appends_exactly_one_entry(api, api_as, db):
    reviewer = api_as("reviewer")
    finance = api_as("finance")
    made: dict[str, dict] = {}

    def step(name, action, entity_type, make, entity=lambda body: body["id"]):
        before = count(db, AuditEntry)
        made[name] = make()
        assert count(db, AuditEntry) == before + 1, action
        assert _last(db)[:3] == (action, entity_type, entity(made[name]))

    step("lab", "organization.created", "organization",
         lambda: organization(api, "Frontier Lab", covered_lab=True))
    step("other", "donor.created", "donor", lambda: person(api, "Someone Else"))
    step("dana", "donor.created", "donor", lambda: person(api, "Dana"))
    step("corp", "donor.created", "donor", lambda: org_donor(api, "Frontier Lab Inc", made["lab"]["id"]))
    step("aff", "affiliation.added", "donor",
         lambda: affiliate(api, made["dana"]["id"], made["lab"]["id"], start="2030-01-01"),
         lambda body: body["donor_id"])
    step("gift", "gift.recorded", "gift", lambda: gift(api, made["dana"]["id"], "1000.00", DAY))
    step("held", "gift.recorded", "gift", lambda: gift(api, made["corp"]["id"], "5000.00", DAY))
    step("review", "gift.reviewed", "gift", lambda: ok(reviewer.post(
        f"/gifts/{made['held']['id']}/review", {"outcome": "accept", "reason": "fine"})),
        lambda _: made["held"]["id"])
    step("refund", "gift.refunded", "gift", lambda: ok(finance.post(
        f"/gifts/{made['gift']['id']}/refund", {"amount": "1.00", "refunded_on": DAY})),
        lambda body: body["gift_id"])
    step("pledge", "pledge.created", "pledge", lambda: ok(api.post("/pledges", {
        "donor_id": made["dana"]["id"], "amount": "10.00", "currency": "USD", "pledged_on": DAY})))
    step("in_kind", "in_kind.recorded", "in_kind_arrangement", lambda: ok(api.post("/in-kind", {
        "organization_id": made["lab"]["id"], "description": "API access", "purpose": "evaluation",
        "start_date": DAY})))
    assert _last(db)[3] == "api:admin@example.org"


def test_gift_entry_records_what_was_decided(api, db):
    w = World(api)
    made = gift(api, w.donor["id"], "250.00", DAY)
    action, _, entity_id, _, data = _last(db)
    assert (action, entity_id) == ("gift.recorded", made["id"])
    assert data == {"donor_id": w.donor["id"], "amount": "250.00", "currency": "USD",
                    "received_on": DAY, "status": "accepted", "decision_id": made["decision"]["id"],
                    "policy_version": "2026.4"}


def test_rescreen_appends_an_entry_per_gift(api, db):
    w = World(api)
    gift(api, w.donor["id"], "10000.00", DAY)
    ada = person(api, "Ada")
    gift(api, ada["id"], "10.00", DAY)
    gift(api, ada["id"], "20.00", DAY)
    before = count(db, AuditEntry)
    affiliate(api, ada["id"], w.lab["id"], start="2020-01-01")
    assert count(db, AuditEntry) == before + 3  # the affiliation and two re-screens
    assert _last(db)[0] == "gift.rescreened"


def test_previews_and_failures_append_nothing(api, db):
    w = World(api)
    before = count(db, AuditEntry)
    api.post("/gifts/preview", {"donor_id": w.donor["id"], "amount": "1.00", "currency": "USD",
                                "received_on": DAY})
    api.post("/gifts", {"donor_id": w.donor["id"], "amount": "1.001", "currency": "USD",
                        "received_on": DAY})
    api.post("/gifts", {"donor_id": 987_654, "amount": "1.00", "currency": "USD", "received_on": DAY})
    assert count(db, AuditEntry) == before


def test_verify_reports_an_intact_chain(api):
    w = World(api)
    gift(api, w.donor["id"], "100.00", DAY)
    report = _verify(api)
    assert {k: report[k] for k in ("ok", "entries", "broken_at", "problem")} == {
        "ok": True, "entries": report["entries"], "broken_at": None, "problem": None}
    assert report["entries"] >= 9  # user, token, 6 world rows, the gift
    assert {k: report[k] for k in ("chain_ok", "rows_ok", "row_problems", "row_findings")} == {
        "chain_ok": True, "rows_ok": True, "row_findings": [],
        "row_problems": {"content differs": 0, "no audit entry": 0, "row gone": 0}}
    assert report["rows_checked"] >= 8  # 2 organisations, 3 donors, 1 affiliation, the gift...


def test_verify_finds_edited_data(api, db):
    w = World(api)
    made = gift(api, w.donor["id"], "100.00", DAY)
    gift(api, w.donor["id"], "200.00", DAY)
    target = db.execute(select(AuditEntry.id).where(AuditEntry.action == "gift.recorded",
                                                    AuditEntry.entity_id == made["id"])).scalar_one()
    forged = '{"amount": "1.00", "currency": "USD"}'
    cast = "CAST(:data AS json)" if db.get_bind().dialect.name == "postgresql" else ":data"
    tamper(db, f"UPDATE audit_entry SET data = {cast} WHERE id = :id",
           {"data": forged, "id": target})
    db.commit()
    report = _verify(api)
    assert (report["ok"], report["broken_at"]) == (False, target)
    assert report["problem"] == "content does not match its hash"


def test_verify_finds_an_edited_actor(api, db):
    w = World(api)
    made = gift(api, w.donor["id"], "100.00", DAY)
    target = db.execute(select(AuditEntry.id).where(AuditEntry.entity_id == made["id"],
                                                    AuditEntry.entity_type == "gift")).scalar_one()
    tamper(db, "UPDATE audit_entry SET actor = 'someone else' WHERE id = :id", {"id": target})
    db.commit()
    assert _verify(api)["broken_at"] == target


def test_verify_finds_a_rewritten_hash(api, db):
    w = World(api)
    gift(api, w.donor["id"], "100.00", DAY)
    target = db.execute(select(AuditEntry.id).order_by(AuditEntry.id).offset(3).limit(1)).scalar_one()
    tamper(db, "UPDATE audit_entry SET hash = :h WHERE id = :id", {"h": "f" * 64, "id": target})
    db.commit()
    report = _verify(api)
    assert (report["ok"], report["broken_at"], report["entries"]) == (False, target, 3)


def test_verify_finds_a_deleted_entry(api, db):
    w = World(api)
    gift(api, w.donor["id"], "100.00", DAY)
    ids = db.execute(select(AuditEntry.id).order_by(AuditEntry.id)).scalars().all()
    tamper(db, "DELETE FROM audit_entry WHERE id = :id", {"id": ids[4]})
    db.commit()
    report = _verify(api)
    assert (report["ok"], report["broken_at"]) == (False, ids[5])
    assert report["problem"] == "previous-hash link does not match"

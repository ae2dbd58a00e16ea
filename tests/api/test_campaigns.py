"""Campaigns, appeals and funds over the API (app/api/campaigns.py), and the designation a
gift carries through POST /gifts: checked, written with the gift, sealed, filtered on, and
counted in each one's progress as accepted cash net of refunds."""

from __future__ import annotations

from sqlalchemy import func, select

from models import AuditEntry, GiftDesignation
from tests.api.helpers import errors_of, gift_body
from tests.builders import World, gift, ok, person

DAY = "2026-03-01"


def _campaign(api, code="year-end", goal="1000.00", **extra) -> dict:
    return ok(api.post("/campaigns", {"code": code, "name": f"Campaign {code}",
                                      "goal": goal, "starts_on": "2026-01-01", **extra}))


def _fund(api, code="general", restricted=False, **extra) -> dict:
    body = {"code": code, "name": f"Fund {code}", "restricted": restricted, **extra}
    if restricted:
        body.setdefault("purpose", "Evaluations of biosecurity capabilities")
    return ok(api.post("/funds", body))


def test_gifts_carry_campaign_appeal_and_fund_and_progress_counts_net_cash(api_as, db):
    fundraiser = api_as("fundraiser")
    donor, other = person(fundraiser, "Ada Giver"), person(fundraiser, "Bo Giver")
    campaign = _campaign(fundraiser)
    appeal = ok(fundraiser.post("/appeals", {"code": "spring-letter", "name": "Spring letter",
                                            "campaign_id": campaign["id"], "channel": "mail",
                                            "sent_on": "2026-02-01"}))
    fund = _fund(fundraiser, "bio", restricted=True)
    assert (campaign["goal"], campaign["raised"], campaign["progress"]) == ("1000.00", "0.00",
                                                                             "0.000000")

    # The appeal brings its campaign; the fund is named.
    first = gift(fundraiser, donor["id"], "300.00", DAY, appeal_id=appeal["id"],
                 fund_id=fund["id"], purpose="restricted")
    assert (first["campaign_id"], first["appeal_id"], first["fund_id"]) == (
        campaign["id"], appeal["id"], fund["id"])
    # All three named: one UNION of three lookups (typed alike on PostgreSQL too).
    second = gift(fundraiser, other["id"], "200.00", DAY, campaign_id=campaign["id"],
                  appeal_id=appeal["id"], fund_id=fund["id"])
    plain = gift(fundraiser, donor["id"], "50.00", DAY)
    assert (plain["campaign_id"], plain["appeal_id"], plain["fund_id"]) == (None, None, None)
    ok(api_as("finance").post(f"/gifts/{second['id']}/refund",
                              {"amount": "50.00", "refunded_on": DAY}))

    got = ok(fundraiser.get(f"/campaigns/{campaign['id']}"), 200)
    assert (got["raised"], got["gifts"], got["donors"], got["progress"]) == (
        "450.00", 2, 2, "0.450000")
    funds = ok(fundraiser.get("/funds"), 200)["items"]
    assert [(f["code"], f["raised"], f["restricted"]) for f in funds] == [("bio", "450.00", True)]
    assert ok(fundraiser.get(f"/appeals/{appeal['id']}"), 200)["raised"] == "450.00"
    assert ok(fundraiser.get(f"/gifts/{first['id']}"), 200)["fund_id"] == fund["id"]

    # The gift list filters by campaign and by fund.
    listed = ok(fundraiser.get(f"/gifts?campaign_id={campaign['id']}"), 200)["items"]
    assert sorted(g["id"] for g in listed) == sorted([first["id"], second["id"]])
    listed = ok(fundraiser.get(f"/gifts?fund_id={fund['id']}"), 200)["items"]
    assert [g["id"] for g in listed] == [first["id"], second["id"]]

    # One designation row per designated gift; none for the plain one.
    assert db.execute(select(func.count()).select_from(GiftDesignation)).scalar_one() == 2
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "gift.recorded",
                                                AuditEntry.entity_id == first["id"])).scalar_one()
    assert entry.data["fund_id"] == fund["id"] and entry.data["campaign_id"] == campaign["id"]
    assert "gift_designation" in {seal[0] for seal in entry.row_hashes}
    created = db.execute(select(AuditEntry).where(AuditEntry.action == "fund.created")).scalar_one()
    assert "purpose" not in created.data and "name" not in created.data  # no free text
    db.rollback()
    assert ok(fundraiser.get("/audit/verify"), 200)["ok"] is True


def test_a_designation_is_checked_and_a_refused_gift_writes_nothing(api_as, db):
    fundraiser = api_as("fundraiser")
    donor = person(fundraiser, "Cy Checker")
    campaign, other = _campaign(fundraiser, "one"), _campaign(fundraiser, "two")
    appeal = ok(fundraiser.post("/appeals", {"code": "ask", "name": "Ask",
                                            "campaign_id": campaign["id"]}))
    open_fund = _fund(fundraiser, "ops")
    errors = errors_of(fundraiser.post("/gifts", gift_body(donor["id"], campaign_id=999_999,
                                                           fund_id=999_998)))
    assert errors == {"campaign_id": ["no such campaign"], "fund_id": ["no such fund"]}
    errors = errors_of(fundraiser.post("/gifts", gift_body(
        donor["id"], campaign_id=other["id"], appeal_id=appeal["id"])))
    assert "appeal_id" in errors
    errors = errors_of(fundraiser.post("/gifts", gift_body(
        donor["id"], fund_id=open_fund["id"], purpose="restricted")))
    assert "fund_id" in errors
    assert ok(fundraiser.get("/gifts"), 200)["items"] == []
    assert db.execute(select(func.count()).select_from(GiftDesignation)).scalar_one() == 0


def test_codes_are_unique_and_checked_and_only_some_roles_write(api_as):
    fundraiser = api_as("fundraiser")
    _campaign(fundraiser, "spring")
    taken = fundraiser.post("/campaigns", {"code": "spring", "name": "Again",
                                           "starts_on": "2026-01-01"})
    assert taken.status_code == 409
    assert "code" in errors_of(fundraiser.post("/campaigns", {
        "code": "Has Spaces!", "name": "x", "starts_on": "2026-01-01"}))
    assert "ends_on" in errors_of(fundraiser.post("/campaigns", {
        "code": "late", "name": "x", "starts_on": "2026-02-01", "ends_on": "2026-01-01"}))
    assert "purpose" in errors_of(fundraiser.post("/funds", {
        "code": "r", "name": "Restricted, no purpose", "restricted": True}))
    assert "goal" in errors_of(fundraiser.post("/funds", {"code": "g", "name": "G",
                                                          "goal": "ten"}))
    assert "goal" in errors_of(fundraiser.post("/funds", {"code": "huge", "name": "H",
                                                          "goal": "9" * 23}))
    assert api_as("viewer").post("/funds", {"code": "v", "name": "V"}).status_code == 403
    assert api_as("reviewer").post("/campaigns", {"code": "v", "name": "V",
                                                  "starts_on": "2026-01-01"}).status_code == 403
    _fund(api_as("finance"), "finance-may")


def test_closing_a_campaign_is_audited_and_keeps_its_gifts(api_as, db):
    fundraiser = api_as("fundraiser")
    w = World(fundraiser)
    campaign = _campaign(fundraiser, "closing")
    gift(fundraiser, w.donor["id"], "20.00", DAY, campaign_id=campaign["id"])
    closed = ok(fundraiser.put(f"/campaigns/{campaign['id']}/active", {"active": False}), 200)
    assert (closed["active"], closed["raised"]) == (False, "20.00")
    actions = db.execute(select(AuditEntry.action).where(
        AuditEntry.entity_type == "campaign")).scalars().all()
    assert actions == ["campaign.created", "campaign.closed"]
    db.rollback()
    assert fundraiser.put("/campaigns/999999/active", {"active": True}).status_code == 404
    assert ok(fundraiser.get("/audit/verify"), 200)["ok"] is True

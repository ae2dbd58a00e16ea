"""funding_day and funding_mix_day are running totals the cap rules read. Verification
recomputes them from the gifts and refunds (app.ledger.derived_verify): an edit made
behind the app's back shows, by day, with the stored and the recomputed figures; what the
app itself writes (gifts, reviews, refunds, a merge moving a company's credits) matches.
On SQLite and PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy import select

from models import FundingDay, FundingMixDay
from tests.builders import World, gift, ok, org_donor, person
from tests.tampering import tamper_apart

DAY = "2026-03-01"


def _verify(api) -> dict:
    response = api.get("/audit/verify")
    assert response.status_code == 200
    return response.get_json()


def _stored(db) -> dict:
    """Both tables as the app left them, by (table, key)."""
    try:
        days = {("funding_day", row.day.isoformat()): row._asdict() for row in db.execute(
            select(FundingDay.day, FundingDay.total_minor, FundingDay.lab_minor,
                   FundingDay.gift_count, FundingDay.refunded_minor,
                   FundingDay.refunded_lab_minor))}
        mix = {("funding_mix_day", f"{row.day.isoformat()} {row.category}"): row._asdict()
               for row in db.execute(select(FundingMixDay.day, FundingMixDay.category,
                                            FundingMixDay.credited_ppm))}
        return days | mix
    finally:
        db.rollback()


def _ledger(api, api_as) -> World:
    w = World(api)
    gift(api, w.donor["id"], "100.00", DAY)
    gift(api, w.employee["id"], "40.00", DAY)  # a lab employee: lab_minor
    company = org_donor(api, "Plain Corp Inc", w.other_org["id"])
    gift(api, company["id"], "300.00", "2026-03-02")  # credited to the funding mix
    held = gift(api, w.lab_donor["id"], "5000.00", DAY)
    ok(api_as("reviewer").post(f"/gifts/{held['id']}/review",
                               {"outcome": "accept", "reason": "fine"}))
    employee_gift = gift(api, w.employee["id"], "33.00", "2026-03-03")
    ok(api_as("finance").post(f"/gifts/{employee_gift['id']}/refund",
                              {"amount": "10.00", "refunded_on": "2026-03-04"}))
    return w


def test_what_the_app_writes_matches_its_recomputation(api, api_as):
    w = _ledger(api, api_as)
    ana, dup = person(api, "Ana"), person(api, "Ana B.")
    gift(api, dup["id"], "20.00", DAY)
    ok(api_as("reviewer").post(f"/donors/{ana['id']}/merge", {"duplicate_id": dup["id"]}), 200)
    assert w is not None
    report = _verify(api)
    assert report["ok"] is True, (report["derived_findings"], report["row_findings"])
    assert report["derived_ok"] is True and report["derived_differing"] == 0
    # Days 1, 2 and 3 in funding_day; the companies' credits of days 1 and 2 in
    # funding_mix_day.
    assert report["derived_checked"] == 3 + 2


def test_a_lowered_lab_total_is_named_with_both_figures(app, api, api_as, db, database_url):
    _ledger(api, api_as)
    lab = _stored(db)[("funding_day", DAY)]["lab_minor"]
    assert lab >= 4000  # the employee's 40.00 at least
    tamper_apart(database_url,
                 f"UPDATE funding_day SET lab_minor = 0 WHERE day = '{DAY}'")
    report = _verify(api)
    assert report["ok"] is False and report["rows_ok"] is True and report["chain_ok"] is True
    assert report["problem"] == ("daily funding totals do not match the gifts and refunds they "
                                 "are kept from")
    assert report["derived_findings"] == [{"table": "funding_day", "key": DAY,
                                           "stored": {"lab_minor": 0},
                                           "recomputed": {"lab_minor": lab}}]
    result = app.test_cli_runner().invoke(args=["verify-audit"])
    assert result.exit_code == 1
    assert f"funding_day {DAY}: lab_minor 0 (recomputed {lab})" in result.stderr


def test_edited_refunds_mix_and_a_deleted_day_are_named(api, api_as, db, database_url, web_as):
    _ledger(api, api_as)
    before = _stored(db)
    # What the test edits, as the app keeps it: the refund of 10.00 on a lab employee's gift
    # (all of it lab money), the company's 300.00 credited in full.
    assert before[("funding_day", "2026-03-03")]["refunded_minor"] == 1000
    assert before[("funding_day", "2026-03-03")]["refunded_lab_minor"] == 1000
    assert before[("funding_day", "2026-03-02")]["total_minor"] == 30000
    tamper_apart(database_url,
                 "UPDATE funding_day SET refunded_minor = 0, refunded_lab_minor = 0 "
                 "WHERE day = '2026-03-03'",
                 "UPDATE funding_mix_day SET credited_ppm = 1 WHERE day = '2026-03-02'",
                 "DELETE FROM funding_day WHERE day = '2026-03-02'")
    found = {(f["table"], f["key"]): (f["stored"], f["recomputed"])
             for f in _verify(api)["derived_findings"]}
    assert found == {
        ("funding_day", "2026-03-02"): (
            {"total_minor": 0, "gift_count": 0}, {"total_minor": 30000, "gift_count": 1}),
        ("funding_day", "2026-03-03"): (
            {"refunded_minor": 0, "refunded_lab_minor": 0},
            {"refunded_minor": 1000, "refunded_lab_minor": 1000}),
        ("funding_mix_day", "2026-03-02 company"): (
            {"credited_ppm": 1}, {"credited_ppm": 30000 * 1_000_000}),
    }
    html = web_as("viewer").get("/staff/audit/verify").get_data(as_text=True)
    assert "3 daily funding totals differ from their recomputation" in html
    assert "<td>funding_day</td><td>2026-03-03</td>" in html

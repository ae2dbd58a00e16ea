"""The public funding page (issue 16): funding by category over time, published frozen,
hashed and signed like a disclosure.

Done when: the public page's figures equal a recomputation from the API's gift list. The
recomputation below reads only the JSON API (every gift, page by page, its donors and their
organisations) and applies the rules docs/public-support.md states for the page, written
out again here; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date

from sqlalchemy import select

from app.auth.roles import PERMISSIONS
from models import AuditEntry, PublishedFundingReport
from tests.builders import World, accepted_gift, gift, ok, org_donor
from tests.test_audit_checkpoints import raw_sql, run
from tests.web.ledger_reads import objects
from tests.web.ledger_reads import text as page_text
from tests.webtools import submit

FIRST, LAST = 2025, 2026


def _person(api, name, **extra):
    return ok(api.post("/donors", {"type": "person", "name": name, **extra}))


def _ledger(api):
    """Every kind of money the page sorts: people (named, anonymous, private), a lab
    employee, a joint gift with one, a foundation, a government, a company, a refund, a
    held gift, lab in-kind support, a gift before the years."""
    world = World(api)
    named = _person(api, "Nora Named", public_name_consent=True)
    hidden = _person(api, "Anna Anonymous", public_name_consent=True, anonymous=True)
    private = world.donor
    foundation = org_donor(api, "Beacon Foundation", category="foundation")
    agency = org_donor(api, "State Arts Council", category="other")
    ok(api.post("/public-support/classes", {"donor_id": agency["id"],
                                             "support_class": "governmental_unit",
                                             "reason": "a state agency"}))
    company = org_donor(api, "Plain Corp", world.other_org["id"])
    accepted_gift(api, private["id"], "5000.00", date(2025, 2, 1))
    accepted_gift(api, foundation["id"], "12000.00", date(2025, 3, 1))
    refunded = accepted_gift(api, named["id"], "300.00", date(2025, 4, 1))
    ok(api.post(f"/gifts/{refunded['id']}/refund", {"amount": "100.00",
                                                   "refunded_on": "2025-05-01",
                                                   "reason": "asked"}))
    accepted_gift(api, world.employee["id"], "400.00", date(2025, 6, 1))
    accepted_gift(api, hidden["id"], "250.00", date(2026, 1, 15))
    accepted_gift(api, agency["id"], "9000.00", date(2026, 2, 1))
    accepted_gift(api, company["id"], "1500.00", date(2026, 3, 1))
    # A joint gift of an employee and a neighbour: its lab part is the employee's half.
    accepted_gift(api, private["id"], "100.01", date(2026, 4, 1), attributions=[
        {"donor_id": private["id"], "fraction": "0.5"},
        {"donor_id": world.employee["id"], "fraction": "0.5"}])
    gift(api, world.lab_donor["id"], "800.00", date(2026, 5, 1), kind="in_kind",
         description="model access for evaluations")
    accepted_gift(api, named["id"], "77.00", date(2024, 12, 31))  # before the years
    return world


def _gifts_from_api(api) -> list[dict]:
    items, after = [], 0
    while True:
        page = ok(api.get(f"/gifts?limit=2&after_id={after}"), 200)
        items += page["items"]
        if page["next_after_id"] is None:
            return items
        after = page["next_after_id"]


def _minor(amount: str) -> int:
    whole, _, cents = amount.partition(".")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole)) * 100 + int((cents + "00")[:2]))


def _split(amount: int, shares: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """In proportion to the fractions given (they may be part of the gift's), largest
    remainder, ties to the smaller donor id (as docs/public-support.md says)."""
    whole = sum(ppm for _, ppm in shares)
    floors = [(d, amount * ppm // whole, amount * ppm % whole) for d, ppm in shares]
    left = amount - sum(f for _, f, _ in floors)
    order = sorted(range(len(floors)), key=lambda i: (-floors[i][2], floors[i][0]))
    parts = [[d, f] for d, f, _ in floors]
    for i in order[:left]:
        parts[i][1] += 1
    return [(d, f) for d, f in parts]


def _recompute(api, as_of: str, government: set[int]) -> dict:
    """Per year and category, from GET /api/v1/gifts, /donors/{id}, /organizations/{id}."""
    donors, orgs = {}, {}

    def donor(donor_id):
        if donor_id not in donors:
            donors[donor_id] = ok(api.get(f"/donors/{donor_id}"), 200)
        return donors[donor_id]

    def lab(org_id):
        if org_id not in orgs:
            orgs[org_id] = ok(api.get(f"/organizations/{org_id}"), 200)
        o = orgs[org_id]
        return o["covered_lab"] or (o["parent_id"] is not None and lab(o["parent_id"]))

    def category(donor_id):
        d = donor(donor_id)
        if donor_id in government:
            return "government"
        if d["organization_id"] is not None and lab(d["organization_id"]):
            return "labs"
        return {"individual": "individuals", "foundation": "foundations",
                "daf_sponsor": "foundations", "company": "companies"}.get(d["category"], "other")

    sums = {y: {} for y in range(FIRST, LAST + 1)}
    in_kind = {y: 0 for y in sums}
    named = set()
    contributing = set()
    for g in _gifts_from_api(api):
        year = int(g["received_on"][:4])
        if g["status"] != "accepted" or year not in sums or g["received_on"] > as_of:
            continue
        gross = _minor(g["reporting_amount"])
        back = sum(_minor(r["reporting_amount"]) for r in g["refunds"]
                   if r["refunded_on"] <= as_of)
        if g["kind"] == "in_kind":
            if category(g["donor_id"]) == "labs":
                in_kind[year] += gross - back
            continue
        recorded_lab = _minor(g["lab_employee_amount"])
        lab_part = recorded_lab - back * recorded_lab // gross
        sums[year]["lab_employees"] = sums[year].get("lab_employees", 0) + lab_part
        shares = [(a["donor_id"], round(float(a["fraction"]) * 1_000_000))
                  for a in g["attributions"]]
        # The rest goes to the attributions that are not a lab employee's (an affiliation
        # with a covered lab on the gift's date; the ledger here has none that ended), when
        # those give back the recorded lab part; else to all of them.
        employees = {d for d, _ in shares
                     if donor(d)["type"] == "person" and any(
                         lab(a["organization_id"]) and a["start_date"] <= g["received_on"]
                         and (a["end_date"] is None or a["end_date"] >= g["received_on"])
                         for a in donor(d)["affiliations"])}
        ppm = sum(p for d, p in shares if d in employees)
        rest = [(d, p) for d, p in shares if d not in employees]
        if len(shares) < 2 or not rest or -(-gross * ppm // 1_000_000) != recorded_lab:
            rest = shares
        for donor_id, part in _split(gross - back - lab_part, rest):
            key = category(donor_id)
            sums[year][key] = sums[year].get(key, 0) + part
            contributing.add(donor_id)
            if donor(donor_id)["public_name_consent"] and not donor(donor_id)["anonymous"]:
                named.add(donor(donor_id)["name"])
    return {"sums": sums, "in_kind": in_kind, "named": sorted(named),
            "private": len(contributing) - len(named)}


def _publish(web_as, role="finance"):
    return submit(web_as(role), f"/staff/funding/?first_year={FIRST}&last_year={LAST}",
                  {}, action="/staff/funding/publish")


def test_the_public_page_equals_a_recomputation_from_the_api_gift_list(api, web_as, client,
                                                                      db):
    world = _ledger(api)
    agency = [d for d in ok(api.get("/donors?limit=200"), 200)["items"]
              if d["name"] == "State Arts Council"][0]
    assert _publish(web_as).status_code == 302
    [record] = objects(db, select(PublishedFundingReport))
    content = json.loads(client.get(f"/funding/{record.id}.json").data)
    want = _recompute(api, content["as_of"], {agency["id"]})

    keys = [c["key"] for c in content["categories"]]
    for year in content["funding"]:
        got = {k: year["by_category"][k]["minor"] for k in keys}
        assert got == {k: want["sums"][year["year"]].get(k, 0) for k in keys}, year["year"]
        assert year["total"]["minor"] == sum(got.values())
    assert {y["year"]: y["total"]["minor"] for y in content["lab_in_kind"]} == want["in_kind"]
    assert [d["name"] for d in content["named_donors"]] == want["named"] == ["Nora Named"]
    assert content["private_donors"] == want["private"]
    # The figures worked by hand, so that the recomputation itself is checked too.
    by_year = {y["year"]: y["by_category"] for y in content["funding"]}
    assert by_year[2025]["individuals"]["minor"] == 500_000 + 20_000
    assert by_year[2025]["lab_employees"]["minor"] == 40_000
    assert by_year[2025]["foundations"]["minor"] == 1_200_000
    assert by_year[2026]["government"]["minor"] == 900_000
    assert by_year[2026]["companies"]["minor"] == 150_000
    # 2026: Anna 250.00 (named nowhere: anonymous) + the joint gift's non-lab part.
    joint_lab = by_year[2026]["lab_employees"]["minor"]
    assert joint_lab in (5_000, 5_001)  # half of 100.01, as the policy rounded it
    assert by_year[2026]["individuals"]["minor"] == 25_000 + 10_001 - joint_lab
    assert [y for y in content["lab_in_kind"] if y["year"] == 2026][0]["labs"] == [
        {"lab": world.lab["name"], "value": {"minor": 80_000, "amount": "800.00"}, "gifts": 1}]

    # The HTML shows the same figures (the table under the chart), and the chart has a
    # text alternative.
    html = page_text(client.get("/funding"))
    for year in content["funding"]:
        assert year["total"]["amount"] in html
    assert 'id="funding-chart"' in html and "<svg" in html and "<title" in html
    assert "Nora Named" in html and "Anna Anonymous" not in html and "Dana Donor" not in html
    # CSV: the same figures, one row per year and category.
    rows = list(csv.reader(io.StringIO(client.get(f"/funding/{record.id}.csv")
                                       .get_data(as_text=True).lstrip("\ufeff"))))
    totals = {(r[0], r[2]): r[3] for r in rows[1:]}
    for year in content["funding"]:
        assert totals[(str(year["year"]), "Total")] == year["total"]["amount"]
    pdf = client.get(f"/funding/{record.id}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_published_figures_are_frozen_and_signed(app, api, web_as, client, db, audit_key,
                                                 tmp_path):
    world = _ledger(api)
    assert _publish(web_as).status_code == 302
    [record] = objects(db, select(PublishedFundingReport))
    before = client.get(f"/funding/{record.id}.json").data
    accepted_gift(api, world.donor["id"], "999.00", date(2026, 6, 1))
    assert client.get(f"/funding/{record.id}.json").data == before  # frozen
    preview = page_text(web_as("viewer").get(f"/staff/funding/?first_year={FIRST}"
                                             f"&last_year={LAST}"))
    total_2026 = [y for y in json.loads(before)["funding"] if y["year"] == 2026][0]["total"]
    assert f"{(total_2026['minor'] + 99_900) / 100:.2f}" in preview  # the preview moves on
    assert "Publish 2025" not in preview  # a viewer may not publish

    [entry] = objects(db, select(AuditEntry).where(
        AuditEntry.action == "funding_report.published"))
    assert entry.data["content_hash"] == record.content_hash and entry.data["signed"] is True
    assert "(verified)" in page_text(client.get(f"/funding/{record.id}"))
    report = ok(api.get("/audit/verify"), 200)
    assert report["ok"] is True and report["funding_reports"]["verified"] == 1

    signed = client.get(f"/funding/{record.id}.signed.json")
    assert signed.status_code == 200
    path = tmp_path / "funding.signed.json"
    path.write_bytes(signed.data)
    checked = run(app, "verify-funding-report", str(path))
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.startswith(f"funding page {record.id} verified")
    anchored = run(app, "verify-audit", "--checkpoints", str(path))
    assert anchored.exit_code == 0, anchored.output

    bundle = json.loads(signed.data)
    bundle["content"] = bundle["content"].replace('"gifts":', '"gifts":1', 1)
    path.write_text(json.dumps(bundle))
    edited = run(app, "verify-funding-report", str(path))
    assert edited.exit_code == 1 and "content's SHA-256" in edited.stderr

    # Someone with the database rewrites the page and its hash: the audit entry and the
    # signed checkpoint still tell.
    forged = record.content.replace('"private_donors":', '"note":"x","private_donors":')
    raw_sql(app, ("UPDATE published_funding_report SET content = :c, content_hash = :h "
                  "WHERE id = :id", {"c": forged, "h": __import__("hashlib").sha256(
                      forged.encode()).hexdigest(), "id": record.id}))
    page = page_text(client.get(f"/funding/{record.id}"))
    assert "(verified)" not in page and "does not match" in page
    report = ok(api.get("/audit/verify"), 200)
    assert report["ok"] is False
    assert [f["funding_report_id"] for f in report["funding_reports"]["failures"]] == [record.id]


def test_publishing_needs_the_permission_and_consent_defaults_to_private(api, web_as, client):
    assert PERMISSIONS["funding.publish"] == {"reviewer", "finance", "admin"}
    _ledger(api)
    fundraiser = web_as("fundraiser")
    page = page_text(fundraiser.get(f"/staff/funding/?first_year={FIRST}&last_year={LAST}"))
    assert "Publish 2025" not in page
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page_text(
        fundraiser.get("/staff/donors/new")))
    refused = fundraiser.post("/staff/funding/publish", data={
        "first_year": FIRST, "last_year": LAST, "csrf_token": token.group(1) if token else ""})
    assert refused.status_code == 403
    assert page_text(client.get("/funding")).count("No funding page has been published") == 1
    created = _person(api, "Someone New")
    assert created["public_name_consent"] is False


def test_a_joint_gift_s_rest_goes_to_the_others_not_to_the_lab_employee(api, web_as, client,
                                                                       db):
    """A lab employee's joint gift with a company and with a neighbour: the employee's
    share is the lab part; the rest is the others' money only, split exactly between them
    in proportion to their fractions (largest remainder, ties to the smaller donor id)."""
    world = World(api)
    company = org_donor(api, "Plain Corp", world.other_org["id"])
    neighbour = _person(api, "Nia Neighbour")
    # 100.03 = a quarter the employee's, three quarters the company's: lab part
    # ceil(10,003 x 0.25) = 2,501; the rest, 7,502, is all the company's (split over every
    # attribution it would have put 1,875 of it under individuals, the employee's).
    accepted_gift(api, company["id"], "100.03", date(2026, 2, 1), attributions=[
        {"donor_id": world.employee["id"], "fraction": "0.25"},
        {"donor_id": company["id"], "fraction": "0.75"}])
    # 100.02 = a fifth the employee's, two fifths each the company's and the neighbour's:
    # lab part ceil(2,000.4) = 2,001; the rest, 8,001, split 1:1 is 4,000.5 each: 4,000
    # each and the unit left to the smaller donor id, the company (made first).
    accepted_gift(api, neighbour["id"], "100.02", date(2026, 3, 1), attributions=[
        {"donor_id": world.employee["id"], "fraction": "0.2"},
        {"donor_id": company["id"], "fraction": "0.4"},
        {"donor_id": neighbour["id"], "fraction": "0.4"}])
    assert company["id"] < neighbour["id"]
    assert _publish(web_as).status_code == 302
    [record] = objects(db, select(PublishedFundingReport))
    content = json.loads(client.get(f"/funding/{record.id}.json").data)
    [y2026] = [y["by_category"] for y in content["funding"] if y["year"] == 2026]
    assert y2026["lab_employees"]["minor"] == 2_501 + 2_001
    assert y2026["companies"]["minor"] == 7_502 + 4_001
    assert y2026["individuals"]["minor"] == 4_000
    assert sum(v["minor"] for v in y2026.values()) == 10_003 + 10_002
    want = _recompute(api, content["as_of"], set())
    assert {k: v["minor"] for k, v in y2026.items()} == {
        k: want["sums"][2026].get(k, 0) for k in y2026}

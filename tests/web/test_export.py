"""CSV exports: streamed, formula-safe, amounts never negative, and audited."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from sqlalchemy import select

from app.ledger.audit import Actor
from app.ledger.csv_export import csv_chunks, neutralise
from app.ledger.gifts import refund_gift
from models import AuditEntry
from tests.builders import gift, ok, org_donor, organization, person
from tests.webtools import post_refused, submit


def download(client, what: str, **filters):
    prefix = "donors" if what == "donors" else "gifts"
    data = {f"{prefix}-{k}": v for k, v in filters.items()}
    return submit(client, "/staff/export/", data, action=f"/staff/export/{what}.csv")


def rows_of(response) -> list[dict]:
    try:
        text = b"".join(response.response).decode("utf-8")
    finally:
        # What a WSGI server does after the last byte: it ends the request, closing the
        # session (and its transaction) that stream_with_context kept open for the rows.
        response.close()
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


# --- neutralising ---------------------------------------------------------------------------

@pytest.mark.parametrize(("cell", "expected"), [
    ("=cmd()", "'=cmd()"),
    ("+1+1", "'+1+1"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("  =1", "'  =1"),
    ("\uff1dSUM(1)", "'\uff1dSUM(1)"),
    ("Dana = donor", "Dana = donor"),
    ("125.00", "125.00"),
    ("", ""),
    (None, ""),
    (True, "yes"),
    (42, "42"),
])
def test_neutralise(cell, expected):
    assert neutralise(cell) == expected


def test_csv_chunks_stream_in_pieces():
    chunks = list(csv_chunks(["a"], ([i] for i in range(1200))))
    assert len(chunks) > 2
    assert "".join(chunks).count("\r\n") == 1201


# --- access ---------------------------------------------------------------------------------

def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/staff/export/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("role", ["viewer", "fundraiser", "reviewer"])
def test_roles_without_exports_may_not_export(web_as, db, role):
    client = web_as(role)
    assert client.get("/staff/export/").status_code == 403
    response = post_refused(client, "/staff/", "/staff/export/gifts.csv", {})
    assert response.status_code == 403
    assert db.execute(select(AuditEntry).where(AuditEntry.action.like("export.%"))).first() is None


# --- donors ---------------------------------------------------------------------------------

def test_donor_export_neutralises_formulas_and_is_audited(api, web_as, db):
    finance = web_as("finance")
    lab = organization(api, "=HYPERLINK(\"http://evil\")")
    person(api, "=cmd()", "eq@example.org")
    person(api, "@SUM(1+1)*cmd|' /C calc'!A0")
    person(api, "Plain Name")
    org_donor(api, "-Minus Corp", lab["id"])
    response = download(finance, "donors")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="donors-')
    assert response.headers["Cache-Control"] == "no-store"
    rows = rows_of(response)
    names = [r["name"] for r in rows]
    assert names == ["'=cmd()", "'@SUM(1+1)*cmd|' /C calc'!A0", "Plain Name", "'-Minus Corp"]
    assert rows[3]["organization"] == "'=HYPERLINK(\"http://evil\")"
    assert rows[0]["email"] == "eq@example.org" and rows[0]["type"] == "person"

    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "export.donors")).scalar_one()
    assert entry.actor == "web:web-finance@example.org"
    assert entry.entity_type == "export"
    assert entry.data == {"format": "csv", "filters": {"type": None}, "rows_at_request": 4}


def test_donor_export_filters_by_type(api, web_as, db):
    finance = web_as("finance")
    person(api, "Ann")
    org_donor(api, "Some Foundation", category="foundation")
    rows = rows_of(download(finance, "donors", type="organization"))
    assert [r["name"] for r in rows] == ["Some Foundation"]
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "export.donors")).scalar_one()
    assert entry.data["filters"] == {"type": "organization"} and entry.data["rows_at_request"] == 1


# --- gifts ----------------------------------------------------------------------------------

def test_gift_export_has_positive_amounts_and_refunds_in_their_own_columns(app, api, web_as, db):
    finance = web_as("finance")
    donor = person(api, "+Plus Donor")
    first = gift(api, donor["id"], "100.00", date(2025, 1, 10), description="=2+5",
                 external_ref="-ref-1")
    gift(api, donor["id"], "5000", date(2025, 2, 1), currency="JPY", fx_rate="0.0065")
    with app.extensions["armslength"].sessions() as session:
        refund_gift(session, first["id"], Actor("test", role="admin"), amount_minor=2550,
                    refunded_on=date(2025, 1, 20), reason="donor asked")
    rows = rows_of(download(finance, "gifts"))
    assert len(rows) == 2
    usd, jpy = rows
    assert usd["donor_name"] == "'+Plus Donor"
    assert usd["description"] == "'=2+5" and usd["external_ref"] == "'-ref-1"
    assert (usd["amount"], usd["refunded"], usd["net_amount"]) == ("100.00", "25.50", "74.50")
    assert (usd["reporting_amount"], usd["reporting_refunded"], usd["reporting_net"]) == \
        ("100.00", "25.50", "74.50")
    assert (jpy["currency"], jpy["amount"], jpy["reporting_amount"], jpy["fx_rate"]) == \
        ("JPY", "5000", "32.50", "0.0065")
    amounts = [k for k in rows[0] if "amount" in k or "refunded" in k or k.endswith("_net")]
    assert all(not row[k].startswith(("-", "'")) for row in rows for k in amounts)


def test_gift_export_filters_and_audits_them(api, web_as, db):
    finance = web_as("finance")
    donor = person(api, "Dana")
    for day in (date(2025, 1, 5), date(2025, 2, 5), date(2025, 3, 5)):
        gift(api, donor["id"], "10.00", day)
    rows = rows_of(download(finance, "gifts", received_from="2025-02-01", received_to="2025-02-28",
                            status="accepted"))
    assert [r["received_on"] for r in rows] == ["2025-02-05"]
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "export.gifts")).scalar_one()
    assert entry.data == {"format": "csv", "rows_at_request": 1, "filters": {
        "received_from": "2025-02-01", "received_to": "2025-02-28", "status": "accepted"}}


def test_bad_filters_are_refused_and_not_audited(web_as, db):
    finance = web_as("finance")
    response = download(finance, "gifts", received_from="2025-03-01", received_to="2025-02-01")
    assert response.status_code == 400
    assert "must not be before the start date" in response.get_data(as_text=True)
    assert download(finance, "gifts", status="lost").status_code == 400
    assert db.execute(select(AuditEntry).where(AuditEntry.action.like("export.%"))).first() is None


def test_admin_may_export_and_a_large_export_streams(api, web_as):
    admin = web_as("admin")
    donor = person(api, "Dana")
    for i in range(12):
        gift(api, donor["id"], f"{i + 1}.00", date(2025, 1, i + 1))
    response = download(admin, "gifts")
    assert response.status_code == 200
    assert [r["amount"] for r in rows_of(response)] == [f"{i + 1}.00" for i in range(12)]


def test_the_stream_gives_its_connection_back(app, api, web_as):
    """Rows are read while the response is sent, after the view's session was closed; the
    session doing that reading must be closed when the stream ends, not left holding a
    connection (on PostgreSQL: idle in transaction, blocking DDL and TRUNCATE)."""
    finance = web_as("finance")
    donor = person(api, "Dana")
    gift(api, donor["id"], "10.00", date(2025, 1, 1))
    pool = app.extensions["armslength"].engine.pool
    for what in ("gifts", "donors"):
        assert len(rows_of(download(finance, what))) == 1
        assert pool.checkedout() == 0


def test_gift_export_names_campaign_appeal_and_fund(api, web_as):
    campaign = ok(api.post("/campaigns", {"code": "spring", "name": "Spring",
                                          "starts_on": "2025-01-01"}))
    appeal = ok(api.post("/appeals", {"code": "letter", "name": "Letter",
                                      "campaign_id": campaign["id"]}))
    fund = ok(api.post("/funds", {"code": "bio", "name": "Bio", "restricted": True,
                                  "purpose": "Biosecurity"}))
    donor = person(api, "Dee Designated")
    gift(api, donor["id"], "10.00", date(2025, 3, 1), appeal_id=appeal["id"], fund_id=fund["id"])
    gift(api, donor["id"], "5.00", date(2025, 3, 2))
    designated, plain = rows_of(download(web_as("finance"), "gifts"))
    assert (designated["campaign"], designated["appeal"], designated["fund"],
            designated["fund_restricted"]) == ("spring", "letter", "bio", "yes")
    assert (plain["campaign"], plain["fund"], plain["fund_restricted"]) == ("", "", "")

"""The staff donor form takes a phone and a postal address, as the API and the CSV do: both
are compared when matching identities (app.ledger.identity), so staff must be able to record
and correct them. Through the page's own form and CSRF token."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from models import Donor
from tests import builders as b
from tests.web.ledger_reads import audit, objects, text
from tests.webtools import submit


def test_a_new_donor_gets_the_phone_and_address_typed_and_identity_matching_uses_the_phone(
        api, web_as, db):
    lab = b.organization(api, "Halcyon Labs", covered_lab=True)
    employee = api.post("/donors", {"type": "person", "name": "Morgan Chen",
                                    "phone": "+1 (415) 555-0100"}).get_json()
    b.affiliate(api, employee["id"], lab["id"])
    response = submit(web_as("fundraiser"), "/staff/donors/new", {
        "type": "person", "name": "M. Chen", "email": "", "category": "",
        "organization_id": "", "phone": "415.555.0100",
        "postal_address": "1 Market St\nSan Francisco CA"})
    assert response.status_code == 302
    donor = objects(db, select(Donor).where(Donor.name == "M. Chen"))[0]
    assert (donor.phone, donor.postal_address) == ("415.555.0100", "1 Market St\nSan Francisco CA")
    page = text(web_as("viewer").get(f"/staff/donors/{donor.id}"))
    assert "415.555.0100" in page and "1 Market St" in page
    # The phone typed on the page is what matching compares: the lab employee's record has
    # the same number, so a gift from this record is held as a possible match.
    held = b.gift(api, donor.id, "100.00", date.today())
    assert held["status"] == "held"
    [match] = held["decision"]["figures"]["possible_matches"]
    assert match["same_phone"] is True and match["record_id"] == employee["id"]


def test_the_edit_form_shows_and_changes_the_phone_and_address_and_blank_clears_them(
        api, web_as, db):
    donor = api.post("/donors", {"type": "person", "name": "Dana Donor", "phone": "020 7946 0000",
                                 "postal_address": "10 Downing St"}).get_json()
    fundraiser = web_as("fundraiser")
    page = f"/staff/donors/{donor['id']}/edit"
    html = text(fundraiser.get(page))
    assert 'value="020 7946 0000"' in html and "10 Downing St</textarea>" in html
    # Saving the page as shown keeps them (the form carries them; nothing is lost).
    assert submit(fundraiser, page, {"name": "Dana Donor"}).status_code == 302
    stored = objects(db, select(Donor).where(Donor.id == donor["id"]))[0]
    assert (stored.phone, stored.postal_address) == ("020 7946 0000", "10 Downing St")
    assert submit(fundraiser, page, {"phone": "020 7946 0001"}).status_code == 302
    stored = objects(db, select(Donor).where(Donor.id == donor["id"]))[0]
    assert stored.phone == "020 7946 0001"
    assert submit(fundraiser, page, {"phone": "", "postal_address": ""}).status_code == 302
    stored = objects(db, select(Donor).where(Donor.id == donor["id"]))[0]
    assert (stored.phone, stored.postal_address) == (None, None)
    changed = [e.data["changed"] for e in audit(db, "donor.changed")]
    assert changed == [["phone"], ["phone", "postal_address"]]


def test_a_phone_longer_than_the_column_is_refused_on_the_page(web_as, db):
    response = submit(web_as("fundraiser"), "/staff/donors/new", {
        "type": "person", "name": "Ada Giver", "phone": "1" * 41})
    assert response.status_code == 422
    assert objects(db, select(Donor)) == []

"""The staff Online page names the donor of each online donation and links to their page
once the payment made the record (before it, the name typed on the form)."""

from __future__ import annotations

import re

from models import OnlineDonation
from tests.stripe.stripe_stubs import expect_settlement, post_event, session_completed, start_donation


def _row(page: str, donation_id: int) -> str:
    recent = page[page.index('id="recent"'):]
    return re.search(rf"<tr><td>{donation_id}</td>.*?</tr>", recent, re.S).group(0)


def test_recent_donations_show_the_donors_name_linked_to_their_page(client, httpserver, db,
                                                                     web_as):
    donation = start_donation(client, httpserver, db, name="Ada Lovelace")
    viewer = web_as("viewer")
    row = _row(viewer.get("/staff/online/").get_data(as_text=True), donation.id)
    assert "Ada Lovelace" in row and "no donor record until paid" in row and "<a " not in row
    expect_settlement(httpserver, "pi_1", donation.amount_minor)
    assert post_event(client, session_completed(donation, "pi_1")).status_code == 200
    db.rollback()
    donor_id = db.get(OnlineDonation, donation.id).donor_id
    db.rollback()
    page = viewer.get("/staff/online/").get_data(as_text=True)
    assert f'<a href="/staff/donors/{donor_id}">Ada Lovelace</a>' in _row(page, donation.id)
    assert f"donor {donor_id}" not in page

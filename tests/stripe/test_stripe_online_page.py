"""The staff Online page names the donor of each online donation and links to their page."""

from __future__ import annotations

import re

from tests.stripe.stripe_stubs import start_donation


def test_recent_donations_show_the_donors_name_linked_to_their_page(client, httpserver, db,
                                                                     web_as):
    donation = start_donation(client, httpserver, db, name="Ada Lovelace")
    page = web_as("viewer").get("/staff/online/").get_data(as_text=True)
    recent = page[page.index('id="recent"'):]
    row = re.search(rf"<tr><td>{donation.id}</td>.*?</tr>", recent, re.S).group(0)
    assert f'<a href="/staff/donors/{donation.donor_id}">Ada Lovelace</a>' in row
    assert f"donor {donation.donor_id}" not in page

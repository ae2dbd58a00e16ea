"""The staff Reports page and its CSV lists (app/web/reports.py)."""

from __future__ import annotations

import csv
import io
import re
from datetime import date

from tests import builders as b
from tests.web.ledger_reads import audit, text

Y = date.today().year


def test_the_reports_page_shows_the_year_lists_and_charts(api, web_as):
    lapsed = b.person(api, "Lapsed Larkin")
    b.gift(api, lapsed["id"], "300.00", date(Y - 1, 1, 1))
    b.ok(api.put(f"/donors/{lapsed['id']}/contact-preferences", {"do_not_contact": True}), 200)
    newcomer = b.person(api, "Newcomer Nash")
    b.gift(api, newcomer["id"], "75.00", date(Y, 1, 1))
    page = text(web_as("viewer").get("/staff/reports/"))
    assert f"Fundraising reports, {Y}" in page
    figures = re.search(r'<dl class="facts" id="year-figures">.*?</dl>', page, re.S).group(0)
    assert re.search(r"Donors</dt><dd>1</dd>", figures)
    assert re.search(r"Retention</dt><dd>0%", figures)
    lybunt = re.search(r'<table id="list-lybunt">.*?</table>', page, re.S).group(0)
    assert "Lapsed Larkin" in lybunt and "300.00 USD" in lybunt
    assert "do not contact" in lybunt  # a call list says who asked not to be called
    first = re.search(r'<table id="list-first-time">.*?</table>', page, re.S).group(0)
    assert "Newcomer Nash" in first
    assert 'id="donors-chart"' in page and 'id="months-chart"' in page
    assert '<svg' in page and 'role="img"' in page
    # A viewer may read the lists but not download them.
    assert "Download CSV" not in page
    previous = text(web_as("viewer").get(f"/staff/reports/?year={Y - 1}"))
    assert f"Fundraising reports, {Y - 1}" in previous
    assert web_as("viewer").get(f"/staff/reports/?year={Y + 1}").status_code == 400


def test_a_fundraiser_downloads_a_list_with_formulas_neutralised_and_audited(api, web_as, db):
    sneaky = b.person(api, "=HYPERLINK(\"http://x\")")
    b.gift(api, sneaky["id"], "120.00", date(Y - 1, 1, 1))
    fundraiser = web_as("fundraiser")
    page = text(fundraiser.get("/staff/reports/"))
    link = re.search(r'href="(/staff/reports/lybunt\.csv[^"]*)"', page).group(1)
    response = fundraiser.get(link.replace("&amp;", "&"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["donor_id", "name", "email", "do_not_contact", "last_year", "lifetime"]
    assert rows[1] == [str(sneaky["id"]), "'=HYPERLINK(\"http://x\")", "", "no", "120.00",
                       "120.00"]
    [entry] = audit(db, "export.report.lybunt")
    assert entry.data == {"format": "csv", "year": Y, "rows": 1}
    assert web_as("viewer").get(link.replace("&amp;", "&")).status_code == 403
    assert fundraiser.get("/staff/reports/nobody.csv").status_code == 404

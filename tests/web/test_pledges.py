"""Pledge screens: list with paid/due/overdue, schedules and their states, the create form."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from app.errors import ValidationFailed
from app.ledger.pledges import add_months, equal_instalments, pledge_schedule
from models import Pledge, PledgeInstalment
from tests import builders as b
from tests.web.ledger_reads import audit, objects, text
from tests.webtools import post_refused, submit


def _pledge(api, donor_id, amount="300.00", instalments=(("2025-01-01", "100.00"),
                                                         ("2025-02-01", "100.00"),
                                                         ("2025-03-01", "100.00"))):
    return b.ok(api.post("/pledges", {
        "donor_id": donor_id, "amount": amount, "currency": "USD", "pledged_on": "2024-12-15",
        "description": "Three-part commitment",
        "instalments": [{"due_on": d, "amount": a} for d, a in instalments]}))


def _states(page: str) -> list[str]:
    schedule = page.split('id="h-schedule"')[1].split("</section>")[0]
    return re.findall(r'<span class="badge state-(\w+)">', schedule)


# --- the schedule arithmetic ---------------------------------------------------------------------

@pytest.mark.parametrize("total, count, expected", [
    (1_000_000, 3, [333_333, 333_333, 333_334]),
    (100, 4, [25, 25, 25, 25]),
    (7, 7, [1] * 7),
    (1_600_000_000, 3, [533_333_333, 533_333_333, 533_333_334]),
])
def test_equal_instalments_are_exact_and_the_last_absorbs_the_remainder(total, count, expected):
    schedule = equal_instalments(total, count, date(2026, 1, 15), 1)
    assert [minor for _, minor in schedule] == expected
    assert sum(expected) == total


def test_instalment_dates_keep_the_day_and_clamp_at_month_end():
    schedule = equal_instalments(400, 4, date(2024, 11, 30), 3)
    assert [d for d, _ in schedule] == [date(2024, 11, 30), date(2025, 2, 28), date(2025, 5, 30),
                                        date(2025, 8, 30)]
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2024, 1, 31), 12) == date(2025, 1, 31)


def test_more_instalments_than_minor_units_is_refused():
    with pytest.raises(ValidationFailed) as error:
        equal_instalments(5, 6, date(2026, 1, 1), 1)
    assert "instalment_count" in error.value.errors


def test_schedule_states_on_frozen_dates(app, api, db):
    donor = b.person(api, "Pat Pledger")
    pledge = _pledge(api, donor["id"])
    b.gift(api, donor["id"], "150.00", "2025-01-05", pledge_id=pledge["id"])
    stored = db.get(Pledge, pledge["id"])

    def states(today):
        try:
            return [(s.state, s.paid_minor) for s in pledge_schedule(db, stored, today)]
        finally:
            db.rollback()

    assert states(date(2025, 1, 15)) == [("paid", 10000), ("part_paid", 5000), ("due", 0)]
    assert states(date(2025, 2, 1)) == [("paid", 10000), ("part_paid", 5000), ("due", 0)]
    assert states(date(2025, 2, 2)) == [("paid", 10000), ("overdue", 5000), ("due", 0)]
    assert states(date(2025, 4, 1)) == [("paid", 10000), ("overdue", 5000), ("overdue", 0)]


# --- access ---------------------------------------------------------------------------------------

def test_anonymous_visitor_is_sent_to_sign_in(client, api):
    pledge = _pledge(api, b.person(api, "Pat")["id"])
    for path in ("/staff/pledges/", f"/staff/pledges/{pledge['id']}", "/staff/pledges/new"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_viewer_reads_but_cannot_write(api, web_as, db):
    donor = b.person(api, "Pat Pledger")
    pledge = _pledge(api, donor["id"])
    viewer = web_as("viewer")
    assert viewer.get("/staff/pledges/").status_code == 200
    assert viewer.get(f"/staff/pledges/{pledge['id']}").status_code == 200
    assert viewer.get("/staff/pledges/new").status_code == 403
    response = post_refused(viewer, "/staff/pledges/", "/staff/pledges/new", {
        "donor_id": donor["id"], "amount": "10.00", "currency": "USD", "pledged_on": "2025-01-01",
        "instalment_count": "1", "frequency": "monthly"})
    assert response.status_code == 403
    assert len(objects(db, select(Pledge))) == 1
    reviewer = web_as("reviewer")  # may read; pledges are the fundraisers' business
    assert reviewer.get("/staff/pledges/new").status_code == 403


# --- pages ------------------------------------------------------------------------------------------

def test_detail_shows_schedule_states_and_payments_as_of_a_date(api, web_as):
    donor = b.person(api, "Pat Pledger")
    pledge = _pledge(api, donor["id"])
    payment = b.gift(api, donor["id"], "150.00", "2025-01-05", pledge_id=pledge["id"])
    viewer = web_as("viewer")

    page = text(viewer.get(f"/staff/pledges/{pledge['id']}?as_of=2025-01-15"))
    assert _states(page) == ["paid", "part_paid", "due"]
    assert "Part paid" in page  # the state in words, not only a colour
    assert f'href="/staff/gifts/{payment["id"]}"' in page and "Pat Pledger" in page

    page = text(viewer.get(f"/staff/pledges/{pledge['id']}?as_of=2025-02-15"))
    assert _states(page) == ["paid", "overdue", "due"]
    facts = page.split('<dl class="facts">')[1].split("</dl>")[0]
    assert re.search(r"<dt>Paid</dt><dd>150.00 USD", facts)
    assert re.search(r"<dt>Due</dt><dd>100.00 USD", facts)
    assert re.search(r"<dt>Overdue</dt><dd><strong>50.00 USD", facts)


def test_list_shows_paid_due_and_overdue_per_pledge_and_in_total(api, web_as):
    donor = b.person(api, "Pat Pledger")
    first = _pledge(api, donor["id"])
    b.gift(api, donor["id"], "150.00", "2025-01-05", pledge_id=first["id"])
    other = b.person(api, "Quinn Quarterly")
    _pledge(api, other["id"], amount="1000.00", instalments=(("2025-06-01", "1000.00"),))
    page = text(web_as("viewer").get("/staff/pledges/?as_of=2025-02-15"))
    row = re.search(r"Pat Pledger.*?</tr>", page, re.S).group(0)
    cells = re.findall(r'<td class="num">(.*?)</td>', row, re.S)
    assert [re.sub(r"<[^>]+>", "", c).split(" USD")[0].strip() for c in cells] == [
        "300.00", "150.00", "100.00", "50.00"]
    assert "Overdue" in row
    totals = page.split('aria-label="Totals"')[1].split("</section>")[0]
    assert "1,300.00 USD" in totals  # pledged
    assert re.search(r"<dt>Due</dt><dd>1,100.00 USD", totals)
    assert re.search(r"<dt>Overdue</dt><dd><strong>50.00 USD", totals)


def test_unknown_pledge_is_404(web_as):
    assert web_as("viewer").get("/staff/pledges/77").status_code == 404


# --- the create form ---------------------------------------------------------------------------------

def _form(donor_id, **overrides):
    return {"donor_id": str(donor_id), "amount": "10000.00", "currency": "usd",
            "pledged_on": "2026-01-31", "description": "", "instalment_count": "3",
            "frequency": "quarterly", "first_due_on": "", "action": "save", **overrides}


def test_create_with_a_quarterly_schedule(api, web_as, db):
    donor = b.person(api, "Pat Pledger")
    fundraiser = web_as("fundraiser")
    form_page = text(fundraiser.get(f"/staff/pledges/new?donor_id={donor['id']}"))
    assert "from Pat Pledger" in form_page and f'value="{donor["id"]}"' in form_page
    response = submit(fundraiser, "/staff/pledges/new", _form(donor["id"]))
    assert response.status_code == 302
    (pledge,) = objects(db, select(Pledge))
    assert (pledge.amount_minor, pledge.currency, pledge.donor_id) == (1_000_000, "USD", donor["id"])
    instalments = objects(db, select(PledgeInstalment).order_by(PledgeInstalment.due_on))
    assert [(i.due_on, i.amount_minor) for i in instalments] == [
        (date(2026, 1, 31), 333_333), (date(2026, 4, 30), 333_333), (date(2026, 7, 31), 333_334)]
    (entry,) = audit(db, "pledge.created")
    assert entry.entity_id == pledge.id and entry.actor == "web:web-fundraiser@example.org"
    assert response.headers["Location"] == f"/staff/pledges/{pledge.id}"
    page = text(fundraiser.get(f"/staff/pledges/{pledge.id}?as_of=2026-01-01"))
    assert "Pledge recorded with 3 instalment(s)." in page
    assert _states(page) == ["due", "due", "due"]
    assert "3,333.34 USD" in page


def test_preview_shows_the_schedule_and_writes_nothing(api, web_as, db):
    donor = b.person(api, "Pat Pledger")
    response = submit(web_as("fundraiser"), "/staff/pledges/new",
                      _form(donor["id"], action="preview", frequency="monthly",
                            first_due_on="2026-03-31"))
    assert response.status_code == 200
    preview = text(response).split('id="h-preview"')[1]
    assert ["2026-03-31", "2026-04-30", "2026-05-31"] == re.findall(r"\d{4}-\d{2}-\d{2}", preview)
    assert "3,333.33 USD" in preview and "3,333.34 USD" in preview and "10,000.00 USD" in preview
    assert objects(db, select(Pledge)) == []
    assert audit(db, "pledge.created") == []


@pytest.mark.parametrize("overrides, field, message", [
    ({"amount": "12,00"}, "amount", "ambiguous"),  # "12,000" is twelve thousand
    ({"amount": "10.001"}, "amount", "would need rounding"),
    ({"currency": "ZZZ"}, "currency", "unknown currency code"),
    ({"amount": "0.02", "instalment_count": "3"}, "instalment_count", "too many instalments"),
    ({"instalment_count": "0"}, "instalment_count", "Number must be between 1 and 360."),
    ({"pledged_on": "31/01/2026"}, "pledged_on", "Not a valid date value."),
    ({"donor_id": "999"}, "donor_id", "no such donor"),
])
def test_invalid_pledge_is_not_saved_and_the_form_says_why(api, web_as, db, overrides, field,
                                                            message):
    donor = b.person(api, "Pat Pledger")
    response = submit(web_as("fundraiser"), "/staff/pledges/new", {**_form(donor["id"]), **overrides})
    assert response.status_code == 422
    page = text(response)
    block = re.search(rf'<div class="field has-error">\s*<label for="{field}".*?</div>', page, re.S)
    assert block and message in block.group(0), page
    assert objects(db, select(Pledge)) == []
    assert audit(db, "pledge.created") == []


def test_an_overpaid_pledge_is_flagged_on_its_page_and_in_the_review_queue(api, web_as):
    donor = b.person(api, "Pat Payer")
    pledge = _pledge(api, donor["id"], "100.00", (("2025-01-01", "100.00"),))
    b.gift(api, donor["id"], "100.00", "2025-01-01", pledge_id=pledge["id"])
    fulfilled = text(web_as("viewer").get(f"/staff/pledges/{pledge['id']}"))
    assert "Fulfilled" in fulfilled and "Overpaid" not in fulfilled
    b.gift(api, donor["id"], "25.00", "2025-01-02", pledge_id=pledge["id"])
    page = text(web_as("viewer").get(f"/staff/pledges/{pledge['id']}"))
    assert "Overpaid: accepted payments exceed the pledge by 25.00 USD." in " ".join(
        page.replace("<strong>", "").replace("</strong>", "").split())
    queue = text(web_as("reviewer").get("/staff/review/"))
    assert "Overpaid pledges" in queue
    assert (f"Pledge {pledge['id']}</a>: 100.00 USD pledged, overpaid by 25.00 USD" in " ".join(
        queue.replace("<strong>", "").replace("</strong>", "").split()))


# --- cancelling and rescheduling from the pledge's page -------------------------------------

def test_reschedule_the_rest_through_the_page(api, web_as, db):
    donor = b.person(api, "Rae Rescheduled")
    pledge = _pledge(api, donor["id"])
    b.gift(api, donor["id"], "100.00", "2025-01-02", pledge_id=pledge["id"])
    path = f"/staff/pledges/{pledge['id']}"
    fundraiser = web_as("fundraiser")
    response = submit(fundraiser, path, {"instalment_count": "4", "frequency": "quarterly",
                                         "first_due_on": "2099-01-31"},
                      action=f"{path}/reschedule")
    assert response.status_code == 302
    page = text(fundraiser.get(path))
    assert _states(page) == ["paid", "due", "due", "due", "due"]
    rows = [(i.due_on, i.amount_minor) for i in objects(db, select(PledgeInstalment).order_by(
        PledgeInstalment.due_on))]
    # The paid instalment stays; 200.00 over four quarters from 31 January (clamped to 30 April).
    assert rows == [(date(2025, 1, 1), 10000), (date(2099, 1, 31), 5000),
                    (date(2099, 4, 30), 5000), (date(2099, 7, 31), 5000),
                    (date(2099, 10, 31), 5000)]
    assert len(audit(db, "pledge.rescheduled")) == 1


def test_cancel_through_the_page_needs_a_reason_and_the_role(api, web_as, db):
    donor = b.person(api, "Cal Cancelled")
    pledge = _pledge(api, donor["id"])
    path = f"/staff/pledges/{pledge['id']}"
    viewer_page = text(web_as("viewer").get(path))
    assert "Cancel pledge" not in viewer_page and "Reschedule" not in viewer_page
    refused = post_refused(web_as("viewer"), path, f"{path}/cancel", {"reason": "not theirs"})
    assert refused.status_code == 403
    fundraiser = web_as("fundraiser")
    empty = submit(fundraiser, path, {"reason": ""}, action=f"{path}/cancel")
    assert empty.status_code == 422
    block = re.search(r'<div class="field has-error">\s*<label for="reason".*?</div>', text(empty),
                      re.S)
    assert block, text(empty)
    assert objects(db, select(Pledge))[0].state == "active"
    done = submit(fundraiser, path, {"reason": "The donor withdrew the pledge."},
                  action=f"{path}/cancel")
    assert done.status_code == 302
    page = text(fundraiser.get(path))
    assert "Cancelled" in page and "The donor withdrew the pledge." in page
    assert "Cancel pledge" not in page
    assert len(audit(db, "pledge.cancelled")) == 1

"""In-kind screens: the list of arrangements and the form that records one."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from models import InKindArrangement
from tests import builders as b
from tests.web.ledger_reads import audit, objects, text
from tests.webtools import post_refused, submit


def _arrangement(api, org_id, **extra):
    return b.ok(api.post("/in-kind", {"organization_id": org_id,
                                      "description": "Pre-release API access",
                                      "purpose": "evaluation", "start_date": "2024-01-01", **extra}))


def _form(org_id, **overrides):
    return {"organization_id": str(org_id), "description": "Free compute for research",
            "purpose": "research", "start_date": "2025-02-01", "end_date": "",
            "estimated_value": "12000.50", "currency": "usd", **overrides}


def test_anonymous_visitor_is_sent_to_sign_in(client):
    for path in ("/staff/in-kind/", "/staff/in-kind/new"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_viewer_reads_but_cannot_write(api, web_as, db):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    viewer = web_as("viewer")
    assert viewer.get("/staff/in-kind/").status_code == 200
    assert viewer.get("/staff/in-kind/new").status_code == 403
    response = post_refused(viewer, "/staff/in-kind/", "/staff/in-kind/new", _form(lab["id"]))
    assert response.status_code == 403
    assert objects(db, select(InKindArrangement)) == []


def test_list_shows_lab_what_purpose_period_and_value(api, web_as):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    other = b.organization(api, "Cloud Co")
    _arrangement(api, lab["id"], estimated_value="25000.00", currency="USD")
    _arrangement(api, other["id"], description="Spare GPUs", purpose="other",
                 start_date="2023-01-01", end_date="2023-06-30")
    page = text(web_as("viewer").get("/staff/in-kind/"))
    page = re.sub(r"</?time[^>]*>", "", page)  # dates are <time> elements
    lab_row = re.search(r">Frontier Lab</a>.*?</tr>", page, re.S).group(0)
    assert "Covered lab" in lab_row and "Pre-release API access" in lab_row
    assert "Evaluation" in lab_row and "2024-01-01 – ongoing" in lab_row
    assert "25,000.00 USD" in lab_row
    other_row = re.search(r">Cloud Co</a>.*?</tr>", page, re.S).group(0)
    assert "Covered" not in other_row and "not known" in other_row
    assert "2023-01-01 – 2023-06-30" in other_row and "ended" in other_row


def test_create_through_the_form(api, web_as, db):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    reviewer = web_as("reviewer")
    form = text(reviewer.get(f"/staff/in-kind/new?organization_id={lab['id']}"))
    assert f'<option selected value="{lab["id"]}">Frontier Lab (covered)</option>' in form
    response = submit(reviewer, "/staff/in-kind/new", _form(lab["id"]))
    assert response.status_code == 302 and response.headers["Location"] == "/staff/in-kind/"
    (item,) = objects(db, select(InKindArrangement))
    assert (item.organization_id, item.purpose, item.estimated_value_minor, item.currency) == (
        lab["id"], "research", 1_200_050, "USD")
    assert item.end_date is None
    (entry,) = audit(db, "in_kind.recorded")
    assert entry.entity_id == item.id and entry.actor == "web:web-reviewer@example.org"
    page = text(reviewer.get("/staff/in-kind/"))
    assert "In-kind arrangement recorded." in page and "12,000.50 USD" in page


def test_value_is_optional(api, web_as, db):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    response = submit(web_as("fundraiser"), "/staff/in-kind/new",
                      _form(lab["id"], estimated_value="", currency=""))
    assert response.status_code == 302
    (item,) = objects(db, select(InKindArrangement))
    assert item.estimated_value_minor is None and item.currency is None


@pytest.mark.parametrize("overrides, field, message", [
    ({"currency": ""}, "estimated_value", "estimated_value and currency go together"),
    ({"estimated_value": "12.345"}, "estimated_value", "would need rounding"),
    ({"end_date": "2025-01-01"}, "end_date", "end_date must not be before start_date"),
    ({"description": ""}, "description", "This field is required."),
    ({"purpose": "bribery"}, "purpose", "Not a valid choice."),
])
def test_invalid_arrangement_is_not_saved_and_the_form_says_why(api, web_as, db, overrides, field,
                                                                 message):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    response = submit(web_as("fundraiser"), "/staff/in-kind/new", _form(lab["id"], **overrides))
    assert response.status_code == 422
    block = re.search(rf'<div class="field has-error">\s*<label for="{field}".*?</div>',
                      text(response), re.S)
    assert block and message in block.group(0), text(response)
    assert objects(db, select(InKindArrangement)) == []
    assert audit(db, "in_kind.recorded") == []


# --- editing and ending ---------------------------------------------------------------------

def test_edit_form_shows_the_arrangement_and_ends_it_today(api, web_as, db):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    item = _arrangement(api, lab["id"], estimated_value="25000.00", currency="USD")
    fundraiser = web_as("fundraiser")
    listing = text(fundraiser.get("/staff/in-kind/"))
    path = f"/staff/in-kind/{item['id']}/edit"
    assert f'href="{path}"' in listing
    form = text(fundraiser.get(path))
    assert 'value="25,000.00"' in form or 'value="25000.00"' in form
    assert "Pre-release API access" in form
    today = api.get("/compliance/summary").get_json()["as_of"]
    response = submit(fundraiser, path, {"end_date": today})
    assert response.status_code == 302
    (stored,) = objects(db, select(InKindArrangement))
    assert stored.end_date.isoformat() == today and stored.estimated_value_minor == 2_500_000
    assert len(audit(db, "in_kind.updated")) == 1
    assert "In-kind arrangement saved." in text(fundraiser.get("/staff/in-kind/"))


def test_ending_a_labs_arrangement_in_the_past_waits_for_a_second_person(api, web_as, db):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    item = _arrangement(api, lab["id"])
    fundraiser = web_as("fundraiser")
    response = submit(fundraiser, f"/staff/in-kind/{item['id']}/edit", {"end_date": "2024-06-30"})
    assert response.status_code == 302
    page = text(fundraiser.get("/staff/in-kind/"))
    assert "waits for a second person: ended before today" in page
    (stored,) = objects(db, select(InKindArrangement))
    assert stored.end_date is None
    queue = text(web_as("reviewer").get("/staff/review/"))
    assert f"In-kind arrangement {item['id']} with Frontier Lab: ended before today" in queue


def test_editing_needs_the_role_and_valid_input(api, web_as, db):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    item = _arrangement(api, lab["id"])
    path = f"/staff/in-kind/{item['id']}/edit"
    viewer = web_as("viewer")
    assert viewer.get(path).status_code == 403
    assert 'Edit or end' not in text(viewer.get("/staff/in-kind/"))
    bad = submit(web_as("fundraiser"), path, {"end_date": "2023-01-01"})
    assert bad.status_code == 422
    assert "end_date must not be before start_date" in text(bad)
    assert audit(db, "in_kind.updated") == []

"""Gift pages: list, detail with decision history, two-step entry, refunds."""

from __future__ import annotations

import html
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Decision, Gift, Refund
from tests.builders import World, affiliate, gift, ok, person
from tests.webtools import session_token, submit

D = date(2025, 6, 2)
NEW = "/staff/gifts/new"


def counts(db) -> tuple[int, int, int, int]:
    try:
        return tuple(db.execute(select(func.count()).select_from(m)).scalar_one()
                     for m in (Gift, Decision, AuditEntry, Refund))
    finally:
        db.rollback()  # never hold a transaction (SQLite: its snapshot) across app requests


def load(db, model, ident):
    try:
        obj = db.get(model, ident)
        db.expunge(obj)
        return obj
    finally:
        db.rollback()


def decisions(db, gift_id) -> list[Decision]:
    try:
        rows = list(db.execute(select(Decision).where(Decision.gift_id == gift_id)
                               .order_by(Decision.id)).scalars())
        for row in rows:
            db.expunge(row)
        return rows
    finally:
        db.rollback()


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of the check step's form (what "Record gift" sends back)."""
    form = page[page.index('class="confirm"'):]
    return {html.unescape(n): html.unescape(v) for n, v in
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form)}


def form_data(donor_id, amount="100.00", currency="USD", on=D, **extra) -> dict:
    return {"donor_id": str(donor_id), "amount": amount, "currency": currency,
            "received_on": on.isoformat(), "kind": "cash", "purpose": "general",
            "method": "check", **extra}


def check(client, data):
    return submit(client, NEW, {**data, "action": "check"})


def check_then_record(client, data):
    page = check(client, data)
    assert page.status_code == 200, text(page)
    carried = hidden_fields(page.get_data(as_text=True))
    return page, client.post(NEW, data={**carried, "action": "record"})


def recorded_id(response) -> int:
    assert response.status_code == 302, response.status_code
    match = re.fullmatch(r"/staff/gifts/(\d+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


@pytest.fixture
def world(api):
    return World(api)


# --- access ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/staff/gifts/", "/staff/gifts/1", NEW])
def test_anonymous_is_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_viewer_reads_but_cannot_post(api, world, web_as, db):
    given = gift(api, world.donor["id"], "100.00", D)
    viewer = web_as("viewer")
    assert viewer.get("/staff/gifts/").status_code == 200
    assert viewer.get(f"/staff/gifts/{given['id']}").status_code == 200
    assert viewer.get(NEW).status_code == 403
    token = session_token(viewer.get("/staff/gifts/").get_data(as_text=True))
    before = counts(db)
    response = viewer.post(NEW, data={**form_data(world.donor["id"]), "action": "record",
                                      "csrf_token": token})
    assert response.status_code == 403
    response = viewer.post(f"/staff/gifts/{given['id']}/refund",
                           data={"amount": "1.00", "refunded_on": "2025-07-01", "csrf_token": token})
    assert response.status_code == 403
    assert counts(db) == before


def test_unknown_gift_is_404(web_as):
    assert web_as("viewer").get("/staff/gifts/999999").status_code == 404


# --- list ------------------------------------------------------------------------------------------

def test_list_shows_gifts_and_filters(api, world, web_as):
    gift(api, world.donor["id"], "100.00", date(2025, 1, 10))
    gift(api, world.lab_donor["id"], "2500.00", date(2025, 2, 10))  # held: lab corporate money
    gift(api, world.lab_donor["id"], "70.00", date(2025, 3, 10), kind="in_kind",
         description="API credits")
    viewer = web_as("viewer")
    page = text(viewer.get("/staff/gifts/"))
    assert "Dana Donor" in page and "Frontier Lab (corporate)" in page
    assert "100.00 USD" in page and "2,500.00 USD" in page
    assert "3 gifts" in page

    held = text(viewer.get("/staff/gifts/?status=held"))
    assert "2,500.00 USD" in held and "100.00 USD" not in held and "1 gift." in held

    in_kind = text(viewer.get("/staff/gifts/?kind=in_kind"))
    assert "70.00 USD" in in_kind and "2,500.00 USD" not in in_kind

    by_donor = text(viewer.get("/staff/gifts/?q=dana"))
    assert "100.00 USD" in by_donor and "Frontier Lab (corporate)" not in by_donor

    dated = text(viewer.get("/staff/gifts/?from=2025-02-01&to=2025-02-28"))
    assert "2,500.00 USD" in dated and "100.00 USD" not in dated and "70.00 USD" not in dated

    odd = viewer.get("/staff/gifts/?status=bogus&from=yesterday&q=%25_")
    assert odd.status_code == 200
    assert "is not a date" in text(odd) and "Unknown status" in text(odd)


def test_list_is_paginated(api, world, web_as):
    for day in range(1, 28):
        gift(api, world.donor["id"], f"{day}.00", date(2025, 1, day))
    viewer = web_as("viewer")
    first = text(viewer.get("/staff/gifts/"))
    assert "27 gifts; page 1 of 2" in first
    assert "27.00 USD" in first and ">1.00 USD" not in first  # newest first
    second = text(viewer.get("/staff/gifts/?page=2"))
    assert ">1.00 USD" in second and ">2.00 USD" in second and "27.00 USD" not in second
    assert "← Previous" in second and "Page 2 of 2 (27 in all)" in second
    assert viewer.get("/staff/gifts/?page=99").status_code == 200


# --- detail ----------------------------------------------------------------------------------------

def test_detail_shows_amounts_fx_and_full_decision(api, world, web_as):
    given = gift(api, world.donor["id"], "1000.00", D, currency="EUR", fx_rate="1.0825",
                 fx_source="ECB reference rate", description="Spring appeal")
    page = text(web_as("viewer").get(f"/staff/gifts/{given['id']}"))
    assert "1,000.00 EUR" in page and "1,082.50 USD" in page
    assert "at 1.0825 USD per EUR (ECB reference rate)" in page
    assert "Spring appeal" in page and "Dana Donor" in page
    assert "Decision history" in page and "Screening" in page and "policy 2026.4" in page
    for label in ("Lab payment for evaluations", "Senior decision-maker", "Lab-employee share cap",
                  "Lab corporate money", "Lab in-kind support"):
        assert label in page
    assert "not fired" in page
    assert "Lab-employee share after" in page and "Headroom (before this gift)" in page


def test_detail_lists_attributions_pledge_and_history_oldest_first(api, world, web_as):
    pledge = ok(api.post("/pledges", {"donor_id": world.donor["id"], "amount": "1000.00",
                                      "currency": "USD", "pledged_on": "2025-01-01"}))
    given = gift(api, world.donor["id"], "200.00", D, pledge_id=pledge["id"],
                 attributions=[{"donor_id": world.donor["id"], "fraction": "0.5"},
                               {"donor_id": world.employee["id"], "fraction": "0.5"}])
    page = text(web_as("viewer").get(f"/staff/gifts/{given['id']}"))
    assert f"Pledge #{pledge['id']}" in page
    assert "Lee Employee" in page and "50%" in page and "explicit" in page

    held = gift(api, world.lab_donor["id"], "300.00", D)
    reviewer = api  # admin may review
    ok(reviewer.post(f"/gifts/{held['id']}/review", {"outcome": "accept", "reason": "Board said yes"}))
    page = text(web_as("viewer").get(f"/staff/gifts/{held['id']}"))
    assert page.index("Screening") < page.index("Board said yes")
    assert "Decided by <strong>admin@example.org</strong>" in page


# --- entry: the check step ------------------------------------------------------------------------

def test_check_step_writes_nothing_and_shows_share_and_headroom(api, world, web_as, db):
    gift(api, world.donor["id"], "1000.00", D)
    fundraiser = web_as("fundraiser")
    before = counts(db)
    page = check(fundraiser, form_data(world.employee["id"], amount="500.00"))
    assert page.status_code == 200
    body = text(page)
    assert ("This gift would bring the lab-employee share to 33.3% (from 0%); "
            "headroom 999.99 USD.") in body
    assert "If recorded now, this gift would be accepted" in body
    assert "Lab-employee share cap" in body
    carried = hidden_fields(page.get_data(as_text=True))
    assert carried["amount"] == "500.00" and carried["donor_id"] == str(world.employee["id"])
    assert carried["received_on"] == D.isoformat() and carried["checked_outcome"] == "accept"
    assert counts(db) == before


def test_check_step_for_a_foreign_currency_shows_the_converted_amount(world, web_as, db):
    fundraiser = web_as("fundraiser")
    before = counts(db)
    page = check(fundraiser, form_data(world.donor["id"], amount="100.00", currency="eur",
                                                 fx_rate="1.10", fx_source="ECB"))
    assert page.status_code == 200
    assert "100.00 EUR" in text(page) and "110.00 USD" in text(page)
    assert counts(db) == before


# --- entry: recording ----------------------------------------------------------------------------

def test_record_an_accepted_gift(world, web_as, db):
    fundraiser = web_as("fundraiser")
    before = counts(db)
    _, response = check_then_record(fundraiser, form_data(world.donor["id"], amount="250.00",
                                                          description="Year-end appeal"))
    gift_id = recorded_id(response)
    stored = load(db, Gift, gift_id)
    assert (stored.status, stored.amount_minor, stored.method) == ("accepted", 25000, "check")
    assert stored.description == "Year-end appeal"
    assert [d.kind for d in decisions(db, gift_id)] == ["screening"]
    after = counts(db)
    assert after[0] == before[0] + 1 and after[1] == before[1] + 1 and after[2] > before[2]
    page = text(fundraiser.get(f"/staff/gifts/{gift_id}"))
    assert f"Gift #{gift_id} recorded: accepted." in page
    assert "recorded by <strong>web-fundraiser@example.org</strong>" in page


def test_record_a_held_gift_of_lab_corporate_money(world, web_as, db):
    fundraiser = web_as("fundraiser")
    page, response = check_then_record(fundraiser, form_data(world.lab_donor["id"], amount="5000.00"))
    assert "would be held for a reviewer" in text(page)
    gift_id = recorded_id(response)
    assert load(db, Gift, gift_id).status == "held"
    detail = text(fundraiser.get(f"/staff/gifts/{gift_id}"))
    assert "recorded: held for a reviewer." in detail
    assert "needs a reviewer's decision" in detail


@pytest.mark.parametrize("case", ["senior", "evaluation_payment"])
def test_record_a_rejected_gift(api, world, web_as, db, case):
    if case == "senior":
        chief = person(api, "Casey Chief")
        affiliate(api, chief["id"], world.lab["id"], start="2019-01-01", senior=True,
                  title="Chief Scientist")
        data = form_data(chief["id"], amount="1000.00")
        why = "Senior decision-maker at a covered lab"
    else:
        data = form_data(world.lab_donor["id"], amount="20000.00", purpose="evaluation_services")
        why = "Payment for evaluation services from a covered lab"
    fundraiser = web_as("fundraiser")
    page, response = check_then_record(fundraiser, data)
    assert "would be rejected" in text(page) and why in text(page)
    gift_id = recorded_id(response)
    assert load(db, Gift, gift_id).status == "rejected"
    detail = text(fundraiser.get(f"/staff/gifts/{gift_id}"))
    assert "recorded: rejected." in detail and why in detail
    if case == "senior":  # named once, though the donor is both payer and attribution
        assert detail.count("Casey Chief (Chief Scientist at Frontier Lab)") == 1


def test_recording_decides_afresh_when_the_ledger_moved(api, world, web_as, db):
    gift(api, world.donor["id"], "1000.00", D)
    fundraiser = web_as("fundraiser")
    page = check(fundraiser, form_data(world.employee["id"], amount="900.00"))
    assert "would be accepted" in text(page)
    other = person(api, "Other Employee")
    affiliate(api, other["id"], world.lab["id"])
    gift(api, other["id"], "500.00", D)  # accepted: 500 / 1500
    carried = hidden_fields(page.get_data(as_text=True))
    response = fundraiser.post(NEW, data={**carried, "action": "record"})
    gift_id = recorded_id(response)
    assert load(db, Gift, gift_id).status == "rejected"
    detail = text(fundraiser.get(f"/staff/gifts/{gift_id}"))
    assert "The ledger changed after the check" in detail
    assert "Lab-employee money would reach 58.3%" in detail


def test_recording_the_same_form_twice_records_one_gift(world, web_as, db):
    fundraiser = web_as("fundraiser")
    page = check(fundraiser, form_data(world.donor["id"]))
    carried = hidden_fields(page.get_data(as_text=True))
    first = recorded_id(fundraiser.post(NEW, data={**carried, "action": "record"}))
    before = counts(db)
    again = fundraiser.post(NEW, data={**carried, "action": "record"})
    assert recorded_id(again) == first
    assert counts(db) == before
    assert "already recorded as gift" in text(fundraiser.get(f"/staff/gifts/{first}"))


def test_record_with_attributions_through_the_form(world, web_as, db):
    data = form_data(world.donor["id"], amount="300.00", **{
        "attributions-0-donor_id": str(world.donor["id"]), "attributions-0-fraction": "0.25",
        "attributions-1-donor_id": str(world.employee["id"]), "attributions-1-fraction": "0.75",
    })
    gift_id = recorded_id(check_then_record(web_as("fundraiser"), data)[1])
    stored = load(db, Gift, gift_id)
    assert stored.lab_minor == 22500  # 0.75 of 300.00 from the lab employee


# --- entry: bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["check", "record"])
@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"amount": "12.345"}, "amount", "USD has 2 decimal places"),
    ({"amount": "100000000.01"}, "amount", "is more than the largest gift recorded here"),
    ({"currency": "EUR"}, "fx_rate", "required when the currency is not USD"),
    ({"amount": ""}, "amount", "This field is required."),
    ({"donor_id": ""}, "donor_id", "Choose a donor."),
    ({"donor_id": "999999"}, "donor_id", "no such donor"),
    ({"attributions-0-donor_id": "1", "attributions-0-fraction": "0.4"}, None,
     "attribution fractions must sum to exactly 1"),
    ({"attributions-0-fraction": "0.4"}, None, "Choose the donor for this fraction."),
    # Goods or services in return, and a tribute: each message on its own field.
    ({"goods_description": "a dinner"}, "goods_value", "Give its fair-market value"),
    ({"goods_value": "10.00"}, "goods_description", "Say what was given"),
    ({"goods_description": "a dinner", "goods_value": "1.234"}, "goods_value",
     "would need rounding"),
    ({"goods_description": "a dinner", "goods_value": "5.00", "kind": "in_kind"}, "goods_value",
     "only a cash gift"),
    ({"tribute_name": "Ada"}, "tribute_kind", "Choose in honour of, or in memory of."),
    ({"tribute_kind": "memory"}, "tribute_name", "Name the person"),
    ({"notify_name": "Byron"}, "tribute_kind", "Only a tribute gift has someone to notify."),
])
def test_bad_input_rerenders_with_field_errors_and_writes_nothing(world, web_as, db, action, changes,
                                                                  field, message):
    fundraiser = web_as("fundraiser")
    before = counts(db)
    response = submit(fundraiser, NEW, {**form_data(world.donor["id"]), **changes, "action": action})
    assert response.status_code == 422
    body = text(response)
    assert message in body
    assert "Nothing was recorded" in body
    if field:
        block = body[body.index(f'id="{field}"'):]
        assert message in block[:block.index("</div>")]
    assert counts(db) == before


def test_change_details_returns_to_the_editable_form(world, web_as):
    fundraiser = web_as("fundraiser")
    page = check(fundraiser, form_data(world.donor["id"], amount="77.00"))
    carried = hidden_fields(page.get_data(as_text=True))
    again = fundraiser.post(NEW, data={**carried, "action": "edit"})
    assert again.status_code == 200
    assert 'value="77.00"' in again.get_data(as_text=True)
    assert "Check</button>" in again.get_data(as_text=True)


def test_new_form_prefills_from_a_pledge(api, world, web_as):
    pledge = ok(api.post("/pledges", {"donor_id": world.donor["id"], "amount": "900.00",
                                      "currency": "EUR", "pledged_on": "2025-01-01"}))
    page = web_as("fundraiser").get(f"{NEW}?pledge_id={pledge['id']}").get_data(as_text=True)
    assert f'value="{world.donor["id"]}" selected' in page or \
        f'selected value="{world.donor["id"]}"' in page
    assert 'value="EUR"' in page


def test_donor_search_narrows_the_choices(world, web_as):
    page = web_as("fundraiser").get(f"{NEW}?donor_q=dana").get_data(as_text=True)
    assert "Dana Donor" in page and "Lee Employee" not in page


# --- refunds ---------------------------------------------------------------------------------------

def test_finance_records_a_refund(api, world, web_as, db):
    given = gift(api, world.donor["id"], "100.00", D)
    finance = web_as("finance")
    page = text(finance.get(f"/staff/gifts/{given['id']}"))
    assert 'value="100.00"' in page  # defaults to what remains
    response = submit(finance, f"/staff/gifts/{given['id']}",
                      {"amount": "40.00", "refunded_on": "2025-07-01", "reason": "Donor asked"},
                      action=f"/staff/gifts/{given['id']}/refund")
    assert response.status_code == 302
    assert load(db, Gift, given["id"]).refunded_minor == 4000
    page = text(finance.get(f"/staff/gifts/{given['id']}"))
    assert "Refund of 40.00 USD recorded" in page and "Donor asked" in page and "2025-07-01" in page
    assert 'value="60.00"' in page


def test_refund_errors_rerender_and_write_nothing(api, world, web_as, db):
    given = gift(api, world.donor["id"], "100.00", D)
    finance = web_as("finance")
    before = counts(db)
    path = f"/staff/gifts/{given['id']}"
    too_much = submit(finance, path, {"amount": "100.01", "refunded_on": "2025-07-01"},
                      action=f"{path}/refund")
    assert too_much.status_code == 422 and "must be between 0.01 and 100.00 USD" in text(too_much)
    too_early = submit(finance, path, {"amount": "1.00", "refunded_on": "2025-01-01"},
                       action=f"{path}/refund")
    assert too_early.status_code == 422 and "must not be before the gift was received" in text(too_early)
    rounding = submit(finance, path, {"amount": "1.001", "refunded_on": "2025-07-01"},
                      action=f"{path}/refund")
    assert rounding.status_code == 422 and "would need rounding" in text(rounding)
    assert counts(db) == before


def test_fundraiser_cannot_refund(api, world, web_as, db):
    given = gift(api, world.donor["id"], "100.00", D)
    fundraiser = web_as("fundraiser")
    page = fundraiser.get(f"/staff/gifts/{given['id']}")
    assert "Record a refund" not in text(page)
    token = session_token(page.get_data(as_text=True))  # the page offers no refund form
    response = fundraiser.post(f"/staff/gifts/{given['id']}/refund", data={
        "amount": "10.00", "refunded_on": "2025-07-01", "csrf_token": token})
    assert response.status_code == 403
    assert load(db, Gift, given["id"]).refunded_minor == 0

"""Amounts typed into the web forms with thousands separators ("30,000.50"): accepted exactly in
the currency's minor units, or refused next to the field when a comma could be a decimal comma."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from models import CashSnapshot, Gift, InKindArrangement, Pledge
from models.money import MoneyError, parse_typed_amount
from tests import builders as b
from tests.web.ledger_reads import objects
from tests.webtools import csrf_token, submit

GIFT_FORM = "/staff/gifts/new"


@pytest.fixture
def db(app):
    with app.extensions["armslength"].sessions() as session:
        yield session


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def field_errors(page: str, name: str) -> list[str]:
    """The error messages shown in the .field box holding the input called `name`."""
    box = re.search(r'<div class="field[^"]*">(?:(?!<div class="field).)*?name="' + re.escape(name)
                    + r'"(?:(?!<div class="field).)*?</div>', page, re.S)
    assert box, f"no field {name!r} on the page"
    return re.findall(r'<small class="error" role="alert"[^>]*>([^<]*)</small>', box.group(0))


@pytest.mark.parametrize(("typed", "currency", "minor"), [
    ("30,000", "USD", 3_000_000),
    ("30,000.50", "USD", 3_000_050),
    ("1,250,000.00", "USD", 125_000_000),
    (" 30,000 ", "USD", 3_000_000),
    ("30000.50", "USD", 3_000_050),       # without separators, as before
    ("30,000", "JPY", 30_000),            # JPY has no minor unit
    ("1,234.567", "BHD", 1_234_567),      # BHD has three
])
def test_grouped_amounts_parse_exactly_in_minor_units(typed, currency, minor):
    assert parse_typed_amount(typed, currency) == minor


@pytest.mark.parametrize(("typed", "currency", "message"), [
    ("30,00", "USD", "ambiguous"),        # a decimal comma?
    ("1,5", "USD", "ambiguous"),
    ("1.234,56", "USD", "ambiguous"),
    ("30,0000", "USD", "ambiguous"),
    (",300", "USD", "ambiguous"),
    ("300,", "USD", "ambiguous"),
    ("30,000.5", "JPY", "JPY has 0 decimal places"),
    ("30,000.505", "USD", "would need rounding"),
    ("-30,000", "USD", "ambiguous"),
    ("0,000", "USD", "greater than zero"),
])
def test_ambiguous_or_inexact_amounts_are_refused(typed, currency, message):
    with pytest.raises(MoneyError, match=message):
        parse_typed_amount(typed, currency)


def _gift_form(donor_id, amount, currency="USD"):
    return {"donor_id": str(donor_id), "amount": amount, "currency": currency,
            "received_on": "2025-06-02", "kind": "cash", "purpose": "general", "method": "check",
            **({} if currency == "USD" else {"fx_rate": "0.0065", "fx_source": "test rate"})}


def _record_gift(client, data):
    """Check, then record with the check step's own hidden fields."""
    page = submit(client, GIFT_FORM, {**data, "action": "check"})
    assert page.status_code == 200, text(page)
    body = page.get_data(as_text=True)
    confirm = body[body.index('class="confirm"'):]
    carried = {html.unescape(n): html.unescape(v) for n, v in
               re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', confirm)}
    return client.post(GIFT_FORM, data={**carried, "action": "record"})


@pytest.mark.parametrize(("typed", "currency", "minor"), [
    ("30,000", "USD", 3_000_000), ("30,000.50", "USD", 3_000_050), ("30,000", "JPY", 30_000)])
def test_gift_form_records_an_amount_with_thousands_separators(api, web_as, db, typed, currency,
                                                                minor):
    donor = b.person(api, "Grace Grouped")
    response = _record_gift(web_as("fundraiser"), _gift_form(donor["id"], typed, currency))
    assert response.status_code == 302, text(response)
    [gift] = objects(db, select(Gift))
    assert (gift.amount_minor, gift.currency) == (minor, currency)


@pytest.mark.parametrize(("typed", "currency", "message"), [
    ("30,00", "USD", "ambiguous"), ("30,000.5", "JPY", "JPY has 0 decimal places")])
def test_gift_form_refuses_an_ambiguous_amount_next_to_the_field(api, web_as, db, typed, currency,
                                                                 message):
    donor = b.person(api, "Grace Grouped")
    response = submit(web_as("fundraiser"), GIFT_FORM,
                      {**_gift_form(donor["id"], typed, currency), "action": "check"})
    assert response.status_code == 422
    page = text(response)
    [error] = field_errors(page, "amount")
    assert message in error
    assert f'value="{typed}"' in page  # the box keeps what was typed
    assert objects(db, select(Gift)) == []


def test_refund_form_takes_thousands_separators(api, web_as, db):
    donor = b.person(api, "Grace Grouped")
    made = b.gift(api, donor["id"], "50000.00", "2025-06-02")
    finance = web_as("finance")
    page = f"/staff/gifts/{made['id']}"
    response = submit(finance, page, {"amount": "12,500.00", "refunded_on": "2025-07-01",
                                      "reason": "asked back"}, action=f"{page}/refund")
    assert response.status_code == 302, text(response)
    [gift] = objects(db, select(Gift))
    assert gift.refunded_minor == 1_250_000


def test_finance_pledge_and_in_kind_forms_take_thousands_separators(api, web_as, db):
    finance = web_as("finance")
    response = submit(finance, "/staff/finance/cash", {"as_of": "2026-01-01",
                                                        "amount": "1,200,000.00"})
    assert response.status_code == 302, text(response)
    assert [c.amount_minor for c in objects(db, select(CashSnapshot))] == [120_000_000]
    response = submit(finance, "/staff/finance/cash", {"as_of": "2026-01-02", "amount": "1,20"})
    assert response.status_code == 422
    assert "ambiguous" in field_errors(text(response), "amount")[0]
    assert len(objects(db, select(CashSnapshot))) == 1

    donor = b.person(api, "Pat Pledger")
    response = submit(web_as("fundraiser"), "/staff/pledges/new", {
        "donor_id": donor["id"], "amount": "16,000.00", "currency": "USD",
        "pledged_on": "2025-01-01", "instalment_count": "2", "frequency": "monthly"})
    assert response.status_code == 302, text(response)
    assert [p.amount_minor for p in objects(db, select(Pledge))] == [1_600_000]

    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    response = submit(web_as("reviewer"), "/staff/in-kind/new", {
        "organization_id": str(lab["id"]), "description": "Free compute", "purpose": "research",
        "start_date": "2025-02-01", "end_date": "", "estimated_value": "12,000.50",
        "currency": "USD"})
    assert response.status_code == 302, text(response)
    assert [i.estimated_value_minor for i in objects(db, select(InKindArrangement))] == [1_200_050]


def test_acknowledgement_goods_value_takes_thousands_separators(api, web_as):
    donor = b.person(api, "Grace Grouped")
    made = b.gift(api, donor["id"], "5000.00", "2026-03-02")
    path = f"/staff/acknowledgements/gifts/{made['id']}"
    fundraiser = web_as("fundraiser")
    token = csrf_token(fundraiser.get(path).get_data(as_text=True))
    response = fundraiser.post(path, data={
        "send_to": "grace@example.org", "goods_description": "a gala table",
        "goods_value": "1,500.00", "action": "preview", "csrf_token": token})
    assert response.status_code == 200, text(response)
    assert "good-faith estimated value of $1,500.00" in text(response)

"""Bad input, generated: the JSON API never answers 500, and every error is a documented 4xx.

- schemathesis reads the served OpenAPI document (GET /api/v1/openapi.json) and generates
  requests for every operation, valid and invalid, sent with an admin's bearer token to a
  ledger that has organisations, donors, gifts and a refund in it: the answer is never a
  server error, its status is one the document lists for the operation, and its body is
  JSON matching the documented schema;
- hypothesis generates amounts, currencies and dates for POST /api/v1/gifts: a valid
  combination is recorded (201), anything else is refused with field errors (422), and a
  refused request writes nothing;
- a body over API_MAX_CONTENT_LENGTH is refused with 413 before it is parsed.

Kept small for CI (a few examples per operation, no deadline, no example database).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select

from app.config import DEFAULTS
from models import AuditEntry, Gift
from models.money import MoneyError, convert, parse_amount
from tests.builders import World, gift

FUZZ = settings(max_examples=12, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture
def api_schema(app, api):
    """The served OpenAPI document, over a ledger with records for the ids to find."""
    world = World(api)
    made = gift(api, world.donor["id"], "120.00", "2026-03-01")
    assert api.post(f"/gifts/{made['id']}/refund", {"amount": "20.00"}).status_code == 201
    gift(api, world.lab_donor["id"], "5000.00", "2026-03-02")  # held for review
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def test_every_operation_answers_generated_input_with_a_documented_status(api_schema, api):
    """schemathesis's own pytest plugin does not run under pytest 9 (it reads a private
    attribute pytest no longer has), so each operation's strategy is driven here."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @FUZZ
            def exercise(case):
                response = case.call(headers=api.headers)
                case.validate_response(response, checks=CHECKS)

            exercise()


# --- the gift endpoint, its money and dates ---------------------------------------------------

CURRENCIES = st.one_of(
    st.sampled_from(["USD", "EUR", "JPY", "BHD", "usd", "XAU", "XXX", "US", "USDD", "", "€"]),
    st.text(max_size=4),
)
AMOUNTS = st.one_of(
    st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1e15"), places=3).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["0", "0.00", "1", "1.5", "1.005", "250.00", "1e3", " 10 ", "+5", "-5",
                     "99999999999999999999.99", "1,000.00", "١٢٣", "0x10", ""]),
    st.integers(min_value=-10, max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
)
DATES = st.one_of(
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat),
    st.sampled_from(["2026-02-30", "2026-13-01", "26-03-01", "2026-3-1", "20260301", "",
                     "2026-03-01T00:00:00", "9999-12-31", "0001-01-01"]),
    st.integers(),
    st.none(),
)


VALID_CURRENCIES = {"USD", "EUR", "JPY", "BHD", "usd"}


def _expected_valid(amount, currency, received_on) -> bool:
    """True when POST /gifts must record this combination (the donor and the rest being
    valid): a known currency as given, an amount that needs no rounding and fits a
    ledger, a real date in the form YYYY-MM-DD well inside the calendar."""
    if currency not in VALID_CURRENCIES or not isinstance(amount, str):
        return False
    if not isinstance(received_on, str) or len(received_on) != 10:
        return False
    try:
        minor = parse_amount(amount, currency.upper())
        day = date.fromisoformat(received_on)
    except (MoneyError, ValueError):
        return False
    # Within the largest gift recorded (MAX_GIFT_MINOR, in USD cents), at the test's rate.
    code = currency.upper()
    reporting = minor if code == "USD" else convert(minor, code, Decimal("1.1"), "USD")
    return reporting <= DEFAULTS["MAX_GIFT_MINOR"] and date(1900, 1, 1) <= day <= date(2100, 12, 31)


@pytest.fixture
def fuzz_world(api):
    return World(api)


@given(amount=AMOUNTS, currency=CURRENCIES, received_on=DATES)
@FUZZ
def test_gift_amounts_currencies_and_dates_are_recorded_or_refused_with_422(
        app, api, fuzz_world, amount, currency, received_on):
    body = {"donor_id": fuzz_world.donor["id"], "amount": amount, "currency": currency,
            "received_on": received_on}
    if isinstance(currency, str) and currency.strip().upper() not in ("USD", ""):
        body["fx_rate"] = "1.1"
    with app.extensions["armslength"].sessions() as session:
        before = (session.execute(select(func.count()).select_from(Gift)).scalar_one(),
                  session.execute(select(func.count()).select_from(AuditEntry)).scalar_one())
    response = api.post("/gifts", body)
    assert response.status_code in (201, 422), (body, response.status_code, response.get_json())
    payload = response.get_json()
    if response.status_code == 422:
        assert payload["error"] == "invalid input" and payload["errors"], payload
        with app.extensions["armslength"].sessions() as session:
            after = (session.execute(select(func.count()).select_from(Gift)).scalar_one(),
                     session.execute(select(func.count()).select_from(AuditEntry)).scalar_one())
        assert after == before, "a refused gift wrote something"
    else:
        assert payload["currency"] == currency.strip().upper()
        assert payload["received_on"] == received_on
    if _expected_valid(amount, currency, received_on):
        assert response.status_code == 201, (body, payload)


def test_an_oversized_body_is_refused_with_413(app, api):
    limit = app.config["API_MAX_CONTENT_LENGTH"]
    body = b'{"donor_id": 1, "amount": "1.00", "currency": "USD", "received_on": "2026-03-01", ' \
           b'"description": "' + b"x" * (limit + 1) + b'"}'
    with app.extensions["armslength"].sessions() as session:
        before = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    response = api.client.post("/api/v1/gifts", data=body, content_type="application/json",
                               headers=api.headers)
    assert response.status_code == 413
    assert response.is_json and "error" in response.get_json()
    with app.extensions["armslength"].sessions() as session:
        assert session.execute(select(func.count()).select_from(AuditEntry)).scalar_one() == before


def test_a_body_just_under_the_limit_is_parsed_and_judged_on_its_content(app, api):
    """The limit is on bytes, not on validity: a large but well-formed body gets a 422 for
    its too-long description, not a 413."""
    world = World(api)
    room = app.config["API_MAX_CONTENT_LENGTH"] - 500
    response = api.post("/gifts", {"donor_id": world.donor["id"], "amount": "1.00",
                                   "currency": "USD",
                                   "received_on": (date(2026, 3, 1) - timedelta(days=1)).isoformat(),
                                   "description": "x" * room})
    assert response.status_code == 422
    assert "description" in response.get_json()["errors"]

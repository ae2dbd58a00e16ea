"""The largest gift recorded (MAX_GIFT_MINOR), and large gifts held for a reviewer.

Before the maximum, a gift of 92,233,720,368,547,758.07 USD (2**63 - 1 cents) was
accepted; it filled its day's funding total, and every later gift dated that day then
failed on every channel.
"""

from __future__ import annotations

import pytest

from app import create_app
from app.config import DEFAULTS, ConfigError
from models.money import GIFT_CEILING_MINOR
from tests.api.helpers import errors_of, gift_body, snapshot
from tests.builders import World, gift, summary

DAY = "2026-03-01"
#: 2**63 - 1 cents: the largest amount a 64-bit column holds.
LARGEST_STORABLE = "92233720368547758.07"


@pytest.fixture
def w(api):
    return World(api)


def test_the_default_maximum_is_within_the_ceiling_that_keeps_sums_in_64_bits():
    assert DEFAULTS["MAX_GIFT_MINOR"] == 10**10  # 100,000,000.00 USD
    assert DEFAULTS["MAX_GIFT_MINOR"] <= GIFT_CEILING_MINOR
    # A day's credits to a donor category (amount x millionths) for 92 gifts at the
    # ceiling still fit a signed 64-bit integer.
    assert 92 * GIFT_CEILING_MINOR * 10**6 < 2**63


def test_a_gift_of_the_largest_storable_amount_is_refused_and_later_gifts_that_day_record(
        api, db, w):
    before = snapshot(db)
    errors = errors_of(api.post("/gifts", gift_body(w.donor["id"], LARGEST_STORABLE, DAY)))
    assert errors == {"amount": [
        "92,233,720,368,547,758.07 USD is more than the largest gift recorded here, "
        "100,000,000.00 USD"]}
    assert snapshot(db) == before

    # The day is not poisoned: gifts dated that day record, from any donor, and count.
    assert gift(api, w.donor["id"], "250.00", DAY)["status"] == "accepted"
    assert gift(api, w.employee["id"], "100.00", DAY)["status"] == "accepted"
    assert summary(api, DAY)["total_funding"] == "350.00"


def test_the_maximum_itself_is_recorded_and_held_for_a_reviewer(api, w):
    made = gift(api, w.donor["id"], "100000000.00", DAY)
    assert made["status"] == "held"
    fired = {r["rule"] for r in made["decision"]["reasons"] if r["fired"]}
    assert fired == {"large_gift"}
    # One cent more is refused, and the preview says the same as the door.
    for path in ("/gifts", "/gifts/preview"):
        errors = errors_of(api.post(path, gift_body(w.donor["id"], "100000000.01", DAY)))
        assert list(errors) == ["amount"]


def test_a_foreign_gift_is_measured_in_the_reporting_currency(api, w):
    # 90,000,000.00 EUR is within the maximum as a number, not once converted.
    errors = errors_of(api.post("/gifts", gift_body(w.donor["id"], "90000000.00", DAY,
                                                    currency="EUR", fx_rate="1.2")))
    assert errors == {"amount": [
        "90,000,000.00 EUR (108,000,000.00 USD at the rate given) is more than the largest "
        "gift recorded here, 100,000,000.00 USD"]}
    assert gift(api, w.donor["id"], "1000.00", DAY, currency="EUR",
                fx_rate="1.2")["reporting_amount"] == "1200.00"


def test_large_gifts_below_the_threshold_are_accepted_and_at_it_held(api, w):
    assert gift(api, w.donor["id"], "999999.99", DAY)["status"] == "accepted"
    assert gift(api, w.donor["id"], "1000000.00", DAY)["status"] == "held"


# --- the setting ----------------------------------------------------------------------------

def _app(database_url, **settings):
    return create_app({"DATABASE_URL": database_url, "TESTING": True,
                       "SECRET_KEY": "test-secret-key-not-for-production", **settings})


def test_the_maximum_is_configurable(database_url):
    app = _app(database_url, MAX_GIFT_MINOR="500000")  # as the environment gives it: text
    assert app.extensions["armslength"].max_gift_minor == 500_000
    app.extensions["armslength"].engine.dispose()


@pytest.mark.parametrize("value", [0, -1, GIFT_CEILING_MINOR + 1, 2**63 - 1])
def test_a_maximum_outside_the_ceiling_is_a_config_error(database_url, value):
    with pytest.raises(ConfigError, match="MAX_GIFT_MINOR"):
        _app(database_url, MAX_GIFT_MINOR=value)

"""No gift is recorded before it is received: a received_on after today (the organisation's
date, ORG_TIMEZONE) is refused by the door, so every channel refuses it the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app import create_app
from app.errors import ValidationFailed
from app.ledger.audit import Actor
from app.ledger.gifts import record_gift
from models.schemas import GiftCreate
from tests import builders as b
from tests.webtools import submit

ADMIN = Actor("test", role="admin")


def utc_today():
    return datetime.now(UTC).date()  # the test app's ORG_TIMEZONE is UTC


def test_the_api_refuses_a_gift_dated_tomorrow_and_takes_one_dated_today(api):
    donor = b.person(api, "Dana Donor")
    tomorrow = utc_today() + timedelta(days=1)
    refused = api.post("/gifts", {"donor_id": donor["id"], "amount": "100.00", "currency": "USD",
                                  "received_on": tomorrow.isoformat()})
    assert refused.status_code == 422
    [message] = refused.get_json()["errors"]["received_on"]
    assert message == (f"{tomorrow.isoformat()} is after today ({utc_today().isoformat()}); "
                       "a gift is recorded once received")
    b.gift(api, donor["id"], "100.00", utc_today())
    far = api.post("/gifts", {"donor_id": donor["id"], "amount": "100.00", "currency": "USD",
                              "received_on": "2099-12-01"})
    assert far.status_code == 422


def test_a_pledge_payment_dated_tomorrow_is_refused(api):
    donor = b.person(api, "Dana Donor")
    pledge = b.ok(api.post("/pledges", {
        "donor_id": donor["id"], "amount": "1000.00", "currency": "USD",
        "pledged_on": utc_today().isoformat(),
        "instalments": [{"due_on": (utc_today() + timedelta(days=30)).isoformat(),
                      "amount": "1000.00"}]}))
    tomorrow = utc_today() + timedelta(days=1)
    refused = api.post("/gifts", {"donor_id": donor["id"], "amount": "1000.00", "currency": "USD",
                                  "received_on": tomorrow.isoformat(), "pledge_id": pledge["id"]})
    assert refused.status_code == 422 and "received_on" in refused.get_json()["errors"]


def test_the_staff_form_shows_the_error_on_the_date(api, web_as):
    donor = b.person(api, "Dana Donor")
    tomorrow = utc_today() + timedelta(days=1)
    data = {"donor_id": str(donor["id"]), "amount": "100.00", "currency": "USD",
            "received_on": tomorrow.isoformat(), "kind": "cash", "purpose": "general",
            "method": "check", "action": "check"}
    response = submit(web_as("fundraiser"), "/staff/gifts/new", data)
    assert response.status_code == 422
    assert f"{tomorrow.isoformat()} is after today" in response.get_data(as_text=True)


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])  # UTC+14, UTC-11
def test_today_is_the_organisations_date_not_utcs(database_url, api, policy, zone):
    """At any hour the local date differs from UTC's in one of the two zones: Kiritimati's
    today may be UTC's tomorrow (taken), Pago Pago's tomorrow may be UTC's today (refused)."""
    donor = b.person(api, "Dana Donor")
    org = create_app({"DATABASE_URL": database_url, "TESTING": True,
                      "SECRET_KEY": "test-secret-key-not-for-production", "ORG_TIMEZONE": zone})
    local_today = datetime.now(ZoneInfo(zone)).date()

    def record(day):
        with org.extensions["armslength"].sessions() as session:
            return record_gift(session, GiftCreate(donor_id=donor["id"], amount="10.00",
                                                   currency="USD", received_on=day),
                               ADMIN, policy, "USD")

    try:
        assert record(local_today).gift.received_on == local_today
        with pytest.raises(ValidationFailed) as refused:
            record(local_today + timedelta(days=1))
        assert "received_on" in refused.value.errors
    finally:
        org.extensions["armslength"].engine.dispose()

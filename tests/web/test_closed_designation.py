"""A closed campaign, appeal or fund takes no new gift naming it from staff: the JSON API
(422 on the field), the staff gift form (the field's error) and the CSV import (a row
error); reopened, it takes them again. (Stripe renewals of a monthly gift started under a
campaign keep arriving after it closes: tests/stripe/test_stripe_recurring.py.)"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import Gift
from tests.api.helpers import errors_of
from tests.builders import gift, ok, person
from tests.web.test_gifts import check, check_then_record, form_data, recorded_id, text
from tests.web.test_import import DONORS_HEADER, csv_text, upload
from tests.web.test_import import errors_of as row_errors

DAY = "2026-03-01"
KINDS = ("campaign", "appeal", "fund")


def _made(api) -> dict[str, dict]:
    campaign = ok(api.post("/campaigns", {"code": "spring", "name": "Spring",
                                          "starts_on": "2026-01-01"}))
    appeal = ok(api.post("/appeals", {"code": "letter", "name": "Letter"}))
    fund = ok(api.post("/funds", {"code": "ops", "name": "Operations"}))
    return {"campaign": campaign, "appeal": appeal, "fund": fund}


def _close(api, kind: str, row_id: int, active: bool = False) -> None:
    ok(api.put(f"/{kind}s/{row_id}/active", {"active": active}), 200)


def _gifts(db) -> int:
    db.rollback()
    return db.execute(select(func.count()).select_from(Gift)).scalar_one()


@pytest.mark.parametrize("kind", KINDS)
def test_the_api_refuses_a_new_gift_naming_a_closed_one_on_its_field(api_as, db, kind):
    fundraiser = api_as("fundraiser")
    donor = person(fundraiser, "Ada Giver")
    made = _made(fundraiser)
    row_id = made[kind]["id"]
    gift(fundraiser, donor["id"], "10.00", DAY, **{f"{kind}_id": row_id})  # open: taken
    _close(fundraiser, kind, row_id)
    before = _gifts(db)
    refused = fundraiser.post("/gifts", {"donor_id": donor["id"], "amount": "10.00",
                                         "currency": "USD", "received_on": DAY,
                                         f"{kind}_id": row_id})
    errors = errors_of(refused)
    assert list(errors) == [f"{kind}_id"]
    assert "is closed" in errors[f"{kind}_id"][0]
    assert _gifts(db) == before
    # The preview says the same, and a gift naming none is still taken.
    assert "is closed" in errors_of(fundraiser.post("/gifts/preview", {
        "donor_id": donor["id"], "amount": "10.00", "currency": "USD", "received_on": DAY,
        f"{kind}_id": row_id}))[f"{kind}_id"][0]
    gift(fundraiser, donor["id"], "10.00", DAY)
    # Reopened (to record a late cheque), it takes gifts again.
    _close(fundraiser, kind, row_id, active=True)
    gift(fundraiser, donor["id"], "10.00", DAY, **{f"{kind}_id": row_id})


def test_the_staff_form_shows_the_closed_campaign_on_its_field(api, web_as, db):
    donor = person(api, "Bo Giver")
    made = _made(api)
    client = web_as("fundraiser")
    first = form_data(donor["id"], campaign_id=str(made["campaign"]["id"]))
    recorded_id(check_then_record(client, first)[1])
    _close(api, "campaign", made["campaign"]["id"])
    before = _gifts(db)
    # Refused at the check step already: nothing to confirm.
    answer = check(client, form_data(donor["id"], amount="20.00",
                                     campaign_id=str(made["campaign"]["id"])))
    assert answer.status_code == 422, answer.status_code
    body = text(answer)
    assert "is closed: it takes no new gifts" in body
    # On the campaign field itself (its error sits inside the field's block).
    field = body[body.index('for="campaign_id"'):]
    assert field.index("is closed") < field.index("</div>")
    assert _gifts(db) == before


@pytest.mark.usefixtures("job_worker")  # an import runs as a background job
def test_the_import_refuses_rows_naming_a_closed_one(api, web_as, db):
    made = _made(api)
    _close(api, "fund", made["fund"]["id"])
    _close(api, "appeal", made["appeal"]["id"])
    header = "external_ref,donor_external_id,amount,currency,received_on,purpose,campaign,appeal,fund"
    files = {"donors": csv_text(DONORS_HEADER, "D1,person,Dana,,,"),
             "gifts": csv_text(header, "G1,D1,10.00,USD,2026-02-01,,,,ops",
                               "G2,D1,10.00,USD,2026-02-01,,,letter,",
                               "G3,D1,10.00,USD,2026-02-01,,spring,,")}
    client = web_as("fundraiser")
    errors = row_errors(upload(client, "check", **files))
    assert "fund: the fund 'ops' is closed" in errors["gifts.csv", 2]
    assert "appeal: the appeal 'letter' is closed" in errors["gifts.csv", 3]
    assert ("gifts.csv", 4) not in errors  # the open campaign is fine
    done = upload(client, "import", **files)
    assert done.job["status"] == "failed" and "closed" in done.get_data(as_text=True)
    assert _gifts(db) == 0  # all or nothing

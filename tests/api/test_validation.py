"""Bad input is a 422 with field errors, and a failed create writes nothing at all."""

from __future__ import annotations

import pytest

from models.schemas import MAX_ATTRIBUTIONS
from tests.api.helpers import errors_of, gift_body, snapshot
from tests.builders import World, gift, ok, org_donor, person


@pytest.fixture
def w(api):
    return World(api)


def _rejects(api, db, path, body, *fields):
    """POST body to path: 422 naming exactly these fields, and no row written anywhere."""
    before = snapshot(db)
    errors = errors_of(api.post(path, body))
    assert sorted(errors) == sorted(fields), errors
    assert snapshot(db) == before
    return errors


# --- amounts ---------------------------------------------------------------------------

BAD_AMOUNTS = [
    (1000, "USD"),          # a JSON number, not a decimal string
    (12.5, "USD"),
    ("1e3", "USD"),         # exponent notation
    ("12.345", "USD"),      # more digits than USD has: refused, never rounded
    ("12.3456", "EUR"),
    ("5.5", "JPY"),         # JPY has no minor unit
    ("0", "USD"),
    ("0.00", "USD"),
    ("-5.00", "USD"),
    ("+5.00", "USD"),
    ("1,000.00", "USD"),
    ("", "USD"),
    ("12.", "USD"),
    (".5", "USD"),
    ("NaN", "USD"),
    (None, "USD"),
]


def test_bad_amounts_are_422_on_the_amount_field(api, db, w):
    before = snapshot(db)
    fields = {}
    for amount, currency in BAD_AMOUNTS:
        body = gift_body(w.donor["id"], amount, currency=currency,
                         **({} if currency == "USD" else {"fx_rate": "1.1"}))
        fields[(amount, currency)] = sorted(errors_of(api.post("/gifts", body)))
    assert fields == {case: ["amount"] for case in BAD_AMOUNTS}
    assert snapshot(db) == before


def test_amount_with_more_digits_than_the_currency_names_the_rounding(api, db, w):
    errors = _rejects(api, db, "/gifts", gift_body(w.donor["id"], "12.345"), "amount")
    assert errors["amount"] == ["USD has 2 decimal places; '12.345' would need rounding"]


def test_three_decimal_currency_takes_three_places(api, w):
    made = gift(api, w.donor["id"], "1.234", "2026-03-01", currency="BHD", fx_rate="2.65")
    assert (made["amount"], made["currency"], made["reporting_amount"]) == ("1.234", "BHD", "3.27")


def test_unknown_or_unusable_currency_is_422(api, db, w):
    for currency in ["XYZ", "US", "usdd", "", 840, "XAU"]:
        _rejects(api, db, "/gifts", gift_body(w.donor["id"], currency=currency, fx_rate="1.0"),
                 "currency")


def test_bad_fx_rate_is_422(api, db, w):
    for fx_rate in ["abc", "0", "0.0", "-1.2", 1.1, "1e2", ""]:
        _rejects(api, db, "/gifts", gift_body(w.donor["id"], "5000", currency="JPY", fx_rate=fx_rate),
                 "fx_rate")


# --- dates -----------------------------------------------------------------------------

def test_bad_gift_dates_are_422(api, db, w):
    for received_on in ["2026-02-30", "2026-13-01", "2026/03/01", "01-03-2026", "2026-3-1",
                        "2026-03-01T10:00:00", "yesterday", 20260301, None]:
        body = gift_body(w.donor["id"])
        body["received_on"] = received_on
        _rejects(api, db, "/gifts", body, "received_on")


def test_summary_as_of_must_be_a_date(api):
    assert list(errors_of(api.get("/compliance/summary?as_of=2026-02-30"))) == ["as_of"]
    assert errors_of(api.get("/compliance/summary?as_of=March")) == {
        "as_of": ["must be a date in the form YYYY-MM-DD"]}


# --- attributions ----------------------------------------------------------------------

def _split(w, first, second):
    return [{"donor_id": w.donor["id"], "fraction": first},
            {"donor_id": w.employee["id"], "fraction": second}]


def test_fractions_not_summing_to_one_are_422(api, db, w):
    for first, second in [("0.5", "0.4"), ("0.6", "0.6"), ("1", "0.5"), ("0.499999", "0.5")]:
        body = gift_body(w.donor["id"], attributions=_split(w, first, second))
        errors = _rejects(api, db, "/gifts", body, "attributions")
        assert errors["attributions"] == ["attribution fractions must sum to exactly 1"]


def test_fraction_with_more_than_six_places_is_422_on_that_fraction(api, db, w):
    for fraction in ["0.3333333", "0.5000000"]:
        body = gift_body(w.donor["id"], attributions=_split(w, fraction, "0.5"))
        errors = _rejects(api, db, "/gifts", body, "attributions.0.fraction")
        assert errors["attributions.0.fraction"] == [
            "fraction must be a decimal string in (0, 1] with at most 6 places"]


def test_fraction_must_be_a_decimal_string_in_zero_to_one(api, db, w):
    for fraction in [0.5, 1, "0", "0.0", "-0.5", "1.5", "1/2", "50%", ""]:
        body = gift_body(w.donor["id"],
                         attributions=[{"donor_id": w.donor["id"], "fraction": fraction}])
        _rejects(api, db, "/gifts", body, "attributions.0.fraction")


def test_six_place_fractions_summing_to_one_are_accepted(api, w):
    made = gift(api, w.donor["id"], "300.00", "2026-03-01", attributions=[
        {"donor_id": w.donor["id"], "fraction": "0.333334"},
        {"donor_id": w.employee["id"], "fraction": "0.666666"}])
    assert [a["fraction"] for a in made["attributions"]] == ["0.333334", "0.666666"]


def test_same_donor_twice_or_an_empty_list_of_attributions_is_422(api, db, w):
    body = gift_body(w.donor["id"], attributions=[{"donor_id": w.donor["id"], "fraction": "0.5"},
                                                  {"donor_id": w.donor["id"], "fraction": "0.5"}])
    assert _rejects(api, db, "/gifts", body, "attributions") == {
        "attributions": ["each donor may appear once in the attributions"]}
    _rejects(api, db, "/gifts", gift_body(w.donor["id"], attributions=[]), "attributions")
    _rejects(api, db, "/gifts", gift_body(w.donor["id"], attributions=[{"donor_id": w.donor["id"]}]),
             "attributions.0.fraction")


def test_unknown_donor_in_attributions_is_a_field_error(api, db, w):
    body = gift_body(w.donor["id"], attributions=_split(w, "0.5", "0.5"))
    body["attributions"][1]["donor_id"] = 987_654
    errors = _rejects(api, db, "/gifts", body, "attributions.1.donor_id")
    assert errors == {"attributions.1.donor_id": ["no such donor"]}


# --- references and shape --------------------------------------------------------------

def test_unknown_donor_is_a_422_field_error_not_a_404(api, db, w):
    errors = _rejects(api, db, "/gifts", gift_body(987_654), "donor_id")
    assert errors == {"donor_id": ["no such donor"]}


def test_unknown_matched_gift_and_pledge_are_field_errors(api, db, w):
    assert _rejects(api, db, "/gifts", gift_body(w.lab_donor["id"], matching_gift_for=987_654),
                    "matching_gift_for") == {"matching_gift_for": ["no such gift"]}
    assert _rejects(api, db, "/gifts", gift_body(w.donor["id"], pledge_id=987_654),
                    "pledge_id") == {"pledge_id": ["no such pledge"]}


def test_matching_gift_must_come_from_an_organisation(api, db, w):
    matched = gift(api, w.donor["id"], "100.00", "2026-03-01")
    _rejects(api, db, "/gifts", gift_body(w.donor["id"], matching_gift_for=matched["id"]),
             "matching_gift_for")


def test_unknown_fields_are_422_each_named(api, db, w):
    body = gift_body(w.donor["id"], colour="blue", status="accepted")
    errors = _rejects(api, db, "/gifts", body, "colour", "status")
    assert errors["colour"] == ["Extra inputs are not permitted"]


def test_computed_fields_cannot_be_sent(api, db, w):
    """amount_minor, fraction_ppm, estimated_value_minor are computed; a caller cannot set them."""
    _rejects(api, db, "/gifts", gift_body(w.donor["id"], amount_minor=1), "amount_minor")
    body = gift_body(w.donor["id"], attributions=[{"donor_id": w.donor["id"], "fraction": "1",
                                                   "fraction_ppm": 1}])
    _rejects(api, db, "/gifts", body, "attributions.0.fraction_ppm")
    _rejects(api, db, "/in-kind", {"organization_id": w.lab["id"], "description": "API credits",
                                   "purpose": "research", "start_date": "2026-01-01",
                                   "estimated_value_minor": -5}, "estimated_value_minor")
    _rejects(api, db, "/pledges", {"donor_id": w.donor["id"], "amount": "10.00", "currency": "USD",
                                   "pledged_on": "2026-01-01", "amount_minor": 5}, "amount_minor")


def test_missing_required_fields_are_each_named(api, db, w):
    _rejects(api, db, "/gifts", {}, "donor_id", "amount", "currency", "received_on")


def test_out_of_vocabulary_values_are_422(api, db, w):
    for field, value in [("kind", "stock"), ("purpose", "bribery"), ("method", ""),
                         ("donor_id", "abc"), ("external_ref", ""), ("description", "x" * 1001)]:
        _rejects(api, db, "/gifts", {**gift_body(w.donor["id"]), field: value}, field)


def test_body_that_is_not_a_json_object_is_422(api, db, w):
    before = snapshot(db)
    for data, content_type in [("{not json", "application/json"),
                               ("donor_id=1&amount=5", "application/x-www-form-urlencoded"),
                               ('["a", "list"]', "application/json"),
                               ('"a string"', "application/json"),
                               ("null", "application/json"),
                               ("", "application/json")]:
        response = api.client.post("/api/v1/gifts", data=data, content_type=content_type,
                                   headers=api.headers)
        assert errors_of(response) == {"body": ["must be a JSON object"]}, data
    assert snapshot(db) == before


def test_out_of_range_numbers_are_422_not_500(api, db, w):
    before = snapshot(db)
    assert api.post("/gifts", gift_body(w.donor["id"], "1" + "0" * 20)).status_code == 422
    assert api.post("/gifts", gift_body(w.donor["id"], "5000", currency="JPY",
                                        fx_rate="9" * 23)).status_code == 422
    assert snapshot(db) == before


# --- failed creates of other kinds write nothing either ------------------------------

def test_donor_validation(api, db):
    _rejects(api, db, "/donors", {"type": "robot", "name": "R2"}, "type")
    _rejects(api, db, "/donors", {"type": "person", "name": ""}, "name")
    _rejects(api, db, "/donors", {"type": "person", "name": "Ada", "email": "not-an-email"}, "email")
    _rejects(api, db, "/donors", {"type": "person", "name": "Ada", "organization_id": 987_654},
             "organization_id")


def test_person_cannot_be_an_organisation(api, db, w):
    _rejects(api, db, "/donors", {"type": "person", "name": "Ada",
                                  "organization_id": w.lab["id"]}, "organization_id")


def test_organisation_with_unknown_parent_or_taken_name_is_422(api, db):
    ok(api.post("/organizations", {"name": "Lab"}))
    _rejects(api, db, "/organizations", {"name": "Lab"}, "name")
    _rejects(api, db, "/organizations", {"name": "Lab Fund", "parent_id": 987_654}, "parent_id")


def test_affiliation_validation(api, db, w):
    path = f"/donors/{w.donor['id']}/affiliations"
    good = {"organization_id": w.lab["id"], "senior_decision_maker": False,
            "start_date": "2020-01-01"}
    _rejects(api, db, path, {**good, "organization_id": 987_654}, "organization_id")
    _rejects(api, db, path, {**good, "kind": "friend"}, "kind")
    _rejects(api, db, path, {**good, "start_date": "2020-02-31"}, "start_date")
    del good["senior_decision_maker"]
    _rejects(api, db, path, good, "senior_decision_maker")


def test_affiliation_of_an_organisation_donor_is_422(api, db, w):
    _rejects(api, db, f"/donors/{w.lab_donor['id']}/affiliations",
             {"organization_id": w.lab["id"], "senior_decision_maker": False,
              "start_date": "2020-01-01"}, "donor_id")


def test_created_objects_answer_201_with_their_id(api):
    lab = ok(api.post("/organizations", {"name": "Lab", "covered_lab": True}))
    assert lab["id"] > 0 and lab["covered_lab"] is True
    ada = person(api, "Ada")
    assert ada["id"] > 0 and ada["type"] == "person" and ada["affiliations"] == []
    corp = org_donor(api, "Lab Inc", lab["id"])
    assert (corp["organization_id"], corp["category"]) == (lab["id"], "company")
    assert api.get(f"/donors/{ada['id']}").get_json()["name"] == "Ada"


# --- bounds on one request's work ------------------------------------------------------------

def test_a_gift_names_at_most_100_attributions(api, db, w):
    """Each attribution is checked under the ledger lock; a bound keeps one request short."""
    donors = [person(api, f"Joint donor {i}")["id"] for i in range(MAX_ATTRIBUTIONS)]
    shares = [{"donor_id": d, "fraction": "0.01"} for d in donors]
    assert MAX_ATTRIBUTIONS == 100
    ok(api.post("/gifts/preview", gift_body(donors[0], attributions=shares)), 200)
    too_many = shares + [{"donor_id": w.donor["id"], "fraction": "0"}]
    for path in ("/gifts", "/gifts/preview"):
        errors = _rejects(api, db, path, gift_body(donors[0], attributions=too_many),
                          "attributions")
        assert errors["attributions"] == ["at most 100 attributions per gift, not 101"]


def test_thousands_of_attributions_are_refused_before_the_ledger_is_touched(api, db, w):
    shares = [{"donor_id": w.donor["id"], "fraction": "0.000001"}] * 20_000  # about 0.9 MB
    errors = _rejects(api, db, "/gifts/preview", gift_body(w.donor["id"], attributions=shares),
                      "attributions")
    assert errors["attributions"] == ["at most 100 attributions per gift, not 20000"]


def test_the_api_body_limit_is_smaller_than_the_upload_limit(app, api, db, w):
    """The 2.3 MB body with 50,000 attributions of the outside test: a 413, unread."""
    assert app.config["API_MAX_CONTENT_LENGTH"] == 1024 * 1024 < app.config["MAX_CONTENT_LENGTH"]
    shares = [{"donor_id": w.donor["id"], "fraction": "0.00002"}] * 50_000
    before = snapshot(db)
    response = api.post("/gifts/preview", gift_body(w.donor["id"], attributions=shares))
    assert response.status_code == 413 and "error" in response.get_json()
    assert snapshot(db) == before

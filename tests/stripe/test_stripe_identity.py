"""The donate form and identity matching: an employer typed with a legal form screens as
that lab, and a new record that is probably a lab-affiliated person is previewed as held."""

from __future__ import annotations

from datetime import date

from tests.builders import affiliate, gift, organization, person
from tests.stripe.stripe_stubs import start_donation


def _funding(api, amount="10000.00") -> None:
    gift(api, person(api, "Other Donor")["id"], amount, date.today())


def test_an_employer_typed_with_a_legal_form_counts_as_that_lab(client, httpserver, db, api):
    lab = organization(api, "Halcyon Labs", covered_lab=True)
    _funding(api)
    donation = start_donation(client, httpserver, db, employer="Halcyon Labs, Inc.")
    assert donation.declared_lab_id == lab["id"]
    assert donation.declaration_state == "declared"


def test_an_employer_typed_as_an_alias_with_a_legal_form(client, httpserver, db, api):
    lab = api.post("/organizations", {"name": "Halcyon Labs", "covered_lab": True,
                                      "aliases": ["Halcyon AI"]}).get_json()
    _funding(api)
    donation = start_donation(client, httpserver, db, employer="HALCYON AI LLC")
    assert donation.declared_lab_id == lab["id"]


def test_another_company_is_not_a_lab(client, httpserver, db, api):
    organization(api, "Halcyon Labs", covered_lab=True)
    _funding(api)
    donation = start_donation(client, httpserver, db, employer="Halcyon Health Inc.")
    assert donation.declared_lab_id is None


def test_a_new_record_probably_a_lab_person_is_previewed_as_held(client, httpserver, db, api):
    """The form creates a bare record for an unknown e-mail; it is screened against the
    lab-affiliated records like any donor, so the preview is a hold, not an accept."""
    lab = organization(api, "Halcyon Labs", covered_lab=True)
    known = person(api, "Ada Lovelace", "ada@halcyon.example")
    affiliate(api, known["id"], lab["id"], start="2020-01-01")
    _funding(api)
    donation = start_donation(client, httpserver, db, name="Ada  Lovelace",
                              email="ada.l@gmail.example")
    assert donation.donor_id != known["id"]
    assert donation.preview_outcome == "hold"

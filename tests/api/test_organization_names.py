"""One organisation per name: imports, rosters and the donate form find organisations by
name (case, punctuation and legal forms aside), so a decoy with a covered lab's name would
catch its employees' affiliations (review finding, issue 11)."""

from __future__ import annotations

import pytest

from tests.builders import ok, organization


@pytest.mark.parametrize("decoy", ["Halcyon Labs, Inc.", "halcyon labs", "Halcyon", "HALCYON LLC"])
def test_a_decoy_with_a_covered_labs_name_is_refused(api_as, decoy):
    admin, fundraiser = api_as("admin"), api_as("fundraiser")
    lab = ok(admin.post("/organizations", {"name": "Halcyon Labs", "covered_lab": True,
                                           "aliases": ["Halcyon"]}))
    refused = fundraiser.post("/organizations", {"name": decoy, "covered_lab": False})
    assert refused.status_code == 422, refused.get_json()
    assert f"id {lab['id']}" in refused.get_json()["errors"]["name"][0]
    assert [o["id"] for o in ok(admin.get("/organizations"), 200)["items"]] == [lab["id"]]


def test_an_alias_or_rename_onto_another_organisations_name_is_refused(api_as):
    admin = api_as("admin")
    organization(admin, "Halcyon Labs", covered_lab=True)
    plain = organization(admin, "Plain Corp")
    alias = admin.patch(f"/organizations/{plain['id']}", {"aliases": ["Halcyon Labs Inc"]})
    assert alias.status_code == 422 and "aliases" in alias.get_json()["errors"]
    rename = admin.patch(f"/organizations/{plain['id']}", {"name": "The Halcyon Labs"})
    assert rename.status_code == 422 and "name" in rename.get_json()["errors"]
    # Its own names are its own: keeping them, or adding a new one, is fine.
    assert admin.patch(f"/organizations/{plain['id']}",
                       {"aliases": ["Plain Corporation", "Plain"]}).status_code == 200
    assert organization(admin, "Halcyon Foundation")["name"] == "Halcyon Foundation"

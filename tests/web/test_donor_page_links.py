"""Donor numbers find donors (the annual statement asks for one), and a gift can be recorded
from the donor's own page with the donor already chosen."""

from __future__ import annotations

import html
import re

import pytest

from tests import builders as b


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def listed_donors(page: str) -> set[int]:
    table = page[page.index("<table"):page.index("</table>")] if "<table" in page else ""
    return {int(i) for i in re.findall(r'href="/staff/donors/(\d+)"', table)}


def picker_donors(page: str) -> set[int]:
    select = re.search(r'<select id="donor_id" name="donor_id"[^>]*>(.*?)</select>', page, re.S)
    return {int(v) for v in re.findall(r'<option(?: selected)? value="(\d+)"', select.group(1))}


@pytest.fixture
def donors(api):
    # Padding so the donor's number is not also part of someone's name or email.
    made = [b.person(api, f"Donor {letter}", email=f"{letter}@example.org") for letter in "abcdefgh"]
    return made


@pytest.mark.parametrize("typed", ["{id}", "#{id}", " {id} "])
def test_the_donor_list_finds_a_donor_by_number(donors, web_as, typed):
    wanted = donors[6]["id"]
    page = text(web_as("viewer").get("/staff/donors/", query_string={"q": typed.format(id=wanted)}))
    assert listed_donors(page) == {wanted}


@pytest.mark.parametrize("typed", ["{id}", "#{id}"])
def test_the_gift_forms_donor_picker_finds_a_donor_by_number(donors, web_as, typed):
    wanted = donors[6]["id"]
    page = text(web_as("fundraiser").get("/staff/gifts/new",
                                         query_string={"donor_q": typed.format(id=wanted)}))
    assert picker_donors(page) == {wanted}


def test_the_donor_page_links_to_the_gift_form_with_the_donor_chosen(donors, web_as):
    donor = donors[2]
    fundraiser = web_as("fundraiser")
    page = text(fundraiser.get(f"/staff/donors/{donor['id']}"))
    link = re.search(r'<a class="button" id="record-gift" href="([^"]+)">Record a gift</a>', page)
    assert link, "no Record a gift link on the donor's page"
    form = text(fundraiser.get(link.group(1)))
    assert f'<option selected value="{donor["id"]}">' in form
    # Readers may not record gifts, so they are not offered the link.
    assert 'id="record-gift"' not in text(web_as("viewer").get(f"/staff/donors/{donor['id']}"))

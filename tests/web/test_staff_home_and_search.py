"""The staff home ("what needs me today") and the search box on every staff page.

* Search: donors by name, e-mail or number; gifts by number or a payment's own id;
  organisations by name or other name; every result links to its record; the box is on
  every staff page and nowhere for the public.
* Home: held gifts (oldest first, linked to their decision for a reviewer), what waits for
  this user's approval (changes and overrides someone else proposed, never one's own), letters
  due (acknowledgements), and the share and headroom.
"""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from models import Gift, OverrideRequest
from tests.builders import World, affiliate, gift, ok, organization, person
from tests.webtools import submit

DAY = "2026-03-02"


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return html.unescape(response.get_data(as_text=True))


def links(page: str) -> set[str]:
    return set(re.findall(r'href="([^"]+)"', page))


def section(page: str, heading_id: str) -> str:
    """The HTML of the <section> labelled by heading_id."""
    start = page.index(f'aria-labelledby="{heading_id}"')
    return page[start:page.index("</section>", start)]


@pytest.fixture
def world(api):
    return World(api)


# --- search ---------------------------------------------------------------------------------

def test_search_finds_donors_by_name_email_and_number(api, web_as, world):
    grace = person(api, "Grace Hopper", "grace@navy.example")
    viewer = web_as("viewer")
    for term in ("hopper", "GRACE@navy", f"#{grace['id']}", str(grace["id"])):
        page = text(viewer.get("/staff/search", query_string={"q": term}))
        donors = section(page, "found-donors")
        assert f'/staff/donors/{grace["id"]}"' in donors, term
        assert "Dana Donor" not in donors, term
    page = text(viewer.get("/staff/search", query_string={"q": "nobody-like-this"}))
    assert 'No donor has “nobody-like-this”' in page


def test_search_ignores_case_in_every_script(api, web_as, world):
    """SQLite's own lower() folds ASCII only; a Cyrillic, Greek or accented name is found
    whatever the case typed, on both databases (and the API's ?q= with it)."""
    people = {
        "Жанна Иванова": ("жанна", "ИВАНОВА"),
        "Σοφία Παπαδοπούλου": ("σοφία", "ΠΑΠΑΔΟΠΟΎΛΟΥ"),
        "Émilie Étienne": ("émilie", "ÉTIENNE"),
    }
    ids = {name: person(api, name)["id"] for name in people}
    viewer = web_as("viewer")
    for name, terms in people.items():
        for term in terms:
            page = text(viewer.get("/staff/search", query_string={"q": term}))
            found = section(page, "found-donors")
            assert f'/staff/donors/{ids[name]}"' in found, term
            assert all(f'/staff/donors/{other}"' not in found
                       for who, other in ids.items() if who != name), term
            listed = ok(api.get("/donors", query_string={"q": term}), 200)
            assert [d["id"] for d in listed["items"]] == [ids[name]], term


def test_search_finds_a_gift_by_number_and_by_payment_id(api, web_as, world):
    first = gift(api, world.donor["id"], "120.00", DAY, external_ref="bank-2026-03-02-7")
    other = gift(api, world.donor["id"], "80.00", DAY)
    viewer = web_as("viewer")
    gifts = section(text(viewer.get("/staff/search", query_string={"q": f"#{first['id']}"})), "found-gifts")
    assert f'/staff/gifts/{first["id"]}"' in gifts and f'/staff/gifts/{other["id"]}"' not in gifts
    gifts = section(text(viewer.get("/staff/search", query_string={"q": "bank-2026-03-02-7"})),
                    "found-gifts")
    assert f'/staff/gifts/{first["id"]}"' in gifts and "120.00" in gifts
    # A payment id is matched whole: part of one names no gift.
    gifts = section(text(viewer.get("/staff/search", query_string={"q": "bank-2026"})), "found-gifts")
    assert "/staff/gifts/" not in gifts


def test_search_finds_a_gift_by_its_stripe_payment_intent(app, api, web_as, world):
    made = gift(api, world.donor["id"], "45.00", DAY)
    with app.extensions["armslength"].sessions() as session:
        session.get(Gift, made["id"]).stripe_payment_intent_id = "pi_3Search0001"
        session.commit()
    gifts = section(text(web_as("viewer").get("/staff/search", query_string={"q": "pi_3Search0001"})),
                    "found-gifts")
    assert f'/staff/gifts/{made["id"]}"' in gifts


def test_search_finds_organisations_by_name_and_other_name(api, web_as, world):
    org = ok(api.post("/organizations", {"name": "Northwind Analytics", "aliases": ["NWA Group"]}))
    viewer = web_as("viewer")
    for term in ("northwind", "nwa group"):
        orgs = section(text(viewer.get("/staff/search", query_string={"q": term})), "found-organizations")
        assert f'/staff/organizations/{org["id"]}"' in orgs, term
        assert "Frontier Lab" not in orgs


def test_search_lists_a_page_of_donors_and_links_to_all(api, web_as):
    for i in range(27):
        person(api, f"Searchable Person {i:02d}")
    page = text(web_as("viewer").get("/staff/search", query_string={"q": "searchable"}))
    donors = section(page, "found-donors")
    assert donors.count("/staff/donors/") - donors.count("/staff/donors/?") == 25
    assert '<span class="count">27</span>' in donors
    assert "/staff/donors/?q=searchable" in donors


def test_search_takes_hostile_and_empty_input(web_as):
    viewer = web_as("viewer")
    for term in ("", "   ", "%", "_", "\\", "#99999999999999999999", "#2147483648", "a" * 500):
        assert viewer.get("/staff/search", query_string={"q": term}).status_code == 200, term


def test_every_staff_page_carries_the_search_box_and_public_pages_do_not(web_as, client):
    viewer = web_as("viewer")
    for path in ("/staff/", "/staff/donors/", "/staff/gifts/", "/staff/compliance", "/staff/finance/"):
        page = text(viewer.get(path))
        assert re.search(r'<form method="get" action="/staff/search"[^>]*role="search"', page), path
        assert '<label for="site-search"' in page, path
    for path in ("/login", "/"):
        assert "site-search" not in text(client.get(path)), path


def test_search_needs_sign_in(client):
    response = client.get("/staff/search?q=dana")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


# --- home -----------------------------------------------------------------------------------

def _rejected_lab_gift(api, world):
    made = gift(api, world.employee["id"], "1000.00", DAY)  # alone: 100% lab money, over the cap
    assert made["status"] == "rejected", made
    return made


def test_home_lists_held_gifts_oldest_first_linked_to_their_decision(api, web_as, world):
    first = gift(api, world.lab_donor["id"], "500.00", DAY)
    second = gift(api, world.lab_donor["id"], "700.00", DAY)
    assert first["status"] == second["status"] == "held"
    held = section(text(web_as("reviewer").get("/staff/")), "todo-held")
    assert '<span class="count">2</span>' in held
    assert held.index(f'/staff/review/gifts/{first["id"]}/decide') < held.index(
        f'/staff/review/gifts/{second["id"]}/decide')
    # A viewer may not decide: the links go to the gifts' pages instead.
    held = section(text(web_as("viewer").get("/staff/")), "todo-held")
    assert f'/staff/gifts/{first["id"]}"' in held and "/decide" not in held


def test_home_shows_overrides_and_changes_for_a_second_person_never_ones_own(
        app, api, web_as, world):
    rejected = _rejected_lab_gift(api, world)
    reviewer = web_as("reviewer")
    path = f"/staff/review/gifts/{rejected['id']}/override"
    assert submit(reviewer, path, {"reason": "a grant agreed before the cap",
                                   "public_note": "Agreed before the cap"}).status_code == 302
    with app.extensions["armslength"].sessions() as session:
        request_ = {"id": session.execute(select(OverrideRequest.id)).scalar_one()}
    change = ok(api.patch(f"/organizations/{world.lab['id']}", {"covered_lab": False}), 202)

    proposer = section(text(reviewer.get("/staff/")), "todo-approvals")
    # The override is the reviewer's own: someone else must approve it. The change is not.
    assert f'#override-{request_["id"]}' not in proposer
    assert f'/staff/changes/{change["change_id"]}"' in proposer
    assert "You proposed 0 change(s) and 1 override(s)" in proposer

    second = section(text(web_as("admin").get("/staff/")), "todo-approvals")
    assert f'/staff/review/#override-{request_["id"]}' in second
    assert f'/staff/changes/{change["change_id"]}"' in second
    assert '<span class="count">2</span>' in second and "You proposed" not in second
    viewer = section(text(web_as("viewer").get("/staff/")), "todo-approvals")
    assert "/staff/changes/" not in viewer and "override-" not in viewer
    assert "Only reviewers and admins approve" in viewer


def test_home_lists_letters_due(api, web_as, world):
    due = gift(api, world.donor["id"], "300.00", DAY)
    small = gift(api, world.donor["id"], "20.00", DAY)  # under the acknowledgement threshold
    letters = section(text(web_as("fundraiser").get("/staff/")), "todo-letters")
    assert f'/staff/acknowledgements/gifts/{due["id"]}"' in letters
    assert f'/gifts/{small["id"]}"' not in letters
    assert '<span class="count">1</span>' in letters


def test_home_shows_the_share_and_headroom(api, web_as, world):
    page = text(web_as("viewer").get("/staff/"))
    assert "Lab-employee share" in page and "Headroom" in page
    assert "No gift is held." in page and "No acknowledgement is due." in page


def test_search_matches_names_in_any_script(api, web_as):
    # The organisation-name index folds case in any script; donor names match as stored.
    org = organization(api, "Лаборатория Север")
    donor = person(api, "Ирина Петрова")
    affiliate(api, donor["id"], org["id"])
    page = text(web_as("viewer").get("/staff/search", query_string={"q": "лаборатория"}))
    assert f'/staff/organizations/{org["id"]}"' in section(page, "found-organizations")
    page = text(web_as("viewer").get("/staff/search", query_string={"q": "Ирина"}))
    assert f'/staff/donors/{donor["id"]}"' in section(page, "found-donors")

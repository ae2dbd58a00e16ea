"""Lists sort by their columns and show page numbers; the links keep the filters in force."""

from __future__ import annotations

import html
import re

import pytest

from app.web.formtools import page_links
from tests import builders as b


def _text(response) -> str:
    assert response.status_code == 200, response.status_code
    return html.unescape(response.get_data(as_text=True))


def _gift_ids(page: str) -> list[int]:
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    return [int(n) for n in re.findall(r'<a href="/staff/gifts/(\d+)">', body)]


@pytest.mark.parametrize("number, pages, expected", [
    (1, 1, [1]),
    (1, 3, [1, 2, 3]),
    (6, 20, [1, None, 4, 5, 6, 7, 8, None, 20]),
    (1, 20, [1, 2, 3, None, 20]),
    (20, 20, [1, None, 18, 19, 20]),
    (4, 7, [1, 2, 3, 4, 5, 6, 7]),
])
def test_page_links(number, pages, expected):
    assert page_links(number, pages) == expected


def test_gifts_sort_by_column_both_ways_and_keep_the_filter(api, web_as):
    donors = {name: b.person(api, name)["id"] for name in ("Cleo", "Abe", "Bea")}
    made = {
        "Cleo": b.gift(api, donors["Cleo"], "50.00", "2026-01-03")["id"],
        "Abe": b.gift(api, donors["Abe"], "700.00", "2026-01-01")["id"],
        "Bea": b.gift(api, donors["Bea"], "10.00", "2026-01-02")["id"],
    }
    viewer = web_as("viewer")
    default = _text(viewer.get("/staff/gifts/"))
    assert _gift_ids(default) == [made["Cleo"], made["Bea"], made["Abe"]]  # newest first
    received = re.search(r'<th scope="col" aria-sort="(\w+)"><a class="sort" href="([^"]+)">'
                         r'Received', default)
    assert received.groups() == ("descending", "/staff/gifts/?sort=received&dir=asc")
    by_amount = _text(viewer.get("/staff/gifts/", query_string={"sort": "reporting", "dir": "desc"}))
    assert _gift_ids(by_amount) == [made["Abe"], made["Cleo"], made["Bea"]]
    by_name = _text(viewer.get("/staff/gifts/", query_string={"sort": "donor", "dir": "asc"}))
    assert _gift_ids(by_name) == [made["Abe"], made["Bea"], made["Cleo"]]
    assert 'aria-sort="ascending"' in by_name
    # The sort links keep the filter; an unknown column falls back to the default order.
    filtered = _text(viewer.get("/staff/gifts/", query_string={"status": "accepted",
                                                                "sort": "nonsense"}))
    assert _gift_ids(filtered) == _gift_ids(default)
    assert re.search(r'href="/staff/gifts/\?status=accepted&sort=donor&dir=asc"', filtered)


def test_gift_pages_are_numbered_and_keep_the_sort(api, web_as):
    donor = b.person(api, "Many Gifts")["id"]
    for day in range(1, 28):
        for _ in range(2):
            b.gift(api, donor, "1.00", f"2026-01-{day:02d}")
    page = _text(web_as("viewer").get("/staff/gifts/", query_string={"sort": "id",
                                                                      "dir": "asc", "page": "2"}))
    nav = page.split('<nav class="pager"')[1].split("</nav>")[0]
    assert 'aria-current="page"><span class="visually-hidden">Page </span>2</a>' in nav
    assert "Page 2 of" in nav
    assert re.search(r'href="/staff/gifts/\?sort=id&dir=asc&page=1"', nav)
    ids = _gift_ids(page)
    assert ids == sorted(ids) and ids[0] > 1


def test_donors_sort_by_name_both_ways(api, web_as):
    for name in ("bravo", "Alpha", "charlie"):
        b.person(api, name)
    viewer = web_as("viewer")

    def names(query):
        page = _text(viewer.get("/staff/donors/", query_string=query))
        return [n for n in re.findall(r'<a href="/staff/donors/\d+">([^<]+)</a>', page)
                if n in ("bravo", "Alpha", "charlie")]

    assert names({}) == ["Alpha", "bravo", "charlie"]  # case-insensitive, A to Z
    assert names({"sort": "name", "dir": "desc"}) == ["charlie", "bravo", "Alpha"]

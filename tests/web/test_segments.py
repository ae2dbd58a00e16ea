"""Donor segments in the staff app: the donors list filters by the criteria, its search is
saved through the page's own form, the saved segment narrows the donors list, its CSV
export, the letters due and the reports, and tags are set on a donor's page."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from models import Segment
from tests import builders as b
from tests.web.test_export import rows_of
from tests.webtools import post_refused, submit


def _text(response) -> str:
    assert response.status_code == 200, response.status_code
    return html.unescape(response.get_data(as_text=True))


def _donor_ids(page: str) -> list[int]:
    body = page.split("<tbody>")[1].split("</tbody>")[0] if "<tbody>" in page else ""
    return sorted(int(n) for n in re.findall(r'<a href="/staff/donors/(\d+)">', body))


def _world(api):
    ids = {name: b.person(api, name)["id"] for name in ("Ann", "Ben", "=Cy")}
    b.gift(api, ids["Ann"], "1500.00", "2026-01-10")
    b.gift(api, ids["=Cy"], "2500.00", "2026-01-11")
    b.gift(api, ids["Ben"], "40.00", "2026-01-12")
    return ids


def test_donors_list_filters_by_giving_and_says_what_it_could_not_read(api, web_as):
    ids = _world(api)
    viewer = web_as("viewer")
    page = _text(viewer.get("/staff/donors/", query_string={"giving_min": "1,000"}))
    assert _donor_ids(page) == sorted([ids["Ann"], ids["=Cy"]])
    assert "2 donors match the filter" in page
    bad = _text(viewer.get("/staff/donors/", query_string={"giving_min": "1,000",
                                                          "last_gift_from": "last week"}))
    # The bad date is left out and named next to its own field; the rest still applies.
    assert _donor_ids(bad) == sorted([ids["Ann"], ids["=Cy"]])
    field = re.search(r'<input id="f-last_gift_from"[^>]*>', bad).group(0)
    assert 'aria-invalid="true"' in field and 'aria-describedby="f-last_gift_from-error"' in field
    assert re.search(r'<small class="error" id="f-last_gift_from-error">[^<]*date', bad)


def test_save_a_search_as_a_segment_and_use_it(api, web_as, app):
    ids = _world(api)
    fundraiser = web_as("fundraiser")
    list_path = "/staff/donors/?giving_min=1,000"
    page = _text(fundraiser.get(list_path))
    save = re.search(r'href="(/staff/segments/new\?[^"]+)"', page).group(1)
    assert "giving_min=1,000" in save
    form_page = _text(fundraiser.get(save))
    assert "Lifetime giving from: 1,000 USD" in form_page and "finds 2 donors now" in form_page
    empty = submit(fundraiser, save, {"name": ""})
    assert empty.status_code == 422
    assert re.search(r'<small class="error"[^>]*>[^<]*required', empty.get_data(as_text=True))
    saved = submit(fundraiser, save, {"name": "Over a thousand"})
    assert saved.status_code == 302
    with app.extensions["armslength"].sessions() as session:
        segment = session.execute(select(Segment)).scalar_one()
        assert segment.criteria == {"giving_min": "1,000"}
    assert saved.headers["Location"].endswith(f"/staff/donors/?segment={segment.id}")

    # The segment is its filter: Ben's next gift puts him in it.
    b.gift(api, ids["Ben"], "2000.00", "2026-02-01")
    in_segment = _text(fundraiser.get(f"/staff/donors/?segment={segment.id}"))
    assert _donor_ids(in_segment) == sorted(ids.values())
    listed = _text(fundraiser.get("/staff/segments/"))
    assert "Over a thousand" in listed and re.search(r'<td class="num">3</td>', listed)

    # Its export holds exactly its members, formula-safe.
    response = submit(fundraiser, "/staff/segments/", {},
                      action=f"/staff/export/donor-list.csv?segment={segment.id}")
    rows = rows_of(response)
    assert sorted(int(r["donor_id"]) for r in rows) == sorted(ids.values())
    assert "'=Cy" in {r["name"] for r in rows}


def test_donor_list_export_follows_the_search(api, web_as):
    ids = _world(api)
    finance = web_as("finance")
    page = _text(finance.get("/staff/donors/?q=ann"))
    assert 'action="/staff/export/donor-list.csv?q=ann"' in page
    rows = rows_of(submit(finance, "/staff/donors/?q=ann", {},
                          action="/staff/export/donor-list.csv?q=ann"))
    assert [int(r["donor_id"]) for r in rows] == [ids["Ann"]]


def test_viewer_may_use_segments_but_not_save_or_export(api, web_as):
    _world(api)
    b.ok(api.post("/segments", {"name": "People", "criteria": {"type": "person"}}))
    viewer = web_as("viewer")
    page = _text(viewer.get("/staff/donors/?giving_min=1"))
    assert "/staff/segments/new" not in page and "donor-list.csv" not in page
    assert viewer.get("/staff/segments/new?giving_min=1").status_code == 403
    refused = post_refused(viewer, "/staff/donors/", "/staff/export/donor-list.csv", {})
    assert refused.status_code == 403
    assert "People" in _text(viewer.get("/staff/segments/"))


def test_letters_due_narrow_to_a_segment(api, web_as):
    ids = _world(api)
    segment = b.ok(api.post("/segments", {"name": "Ann only", "criteria": {"q": "Ann"}}))
    page = _text(web_as("viewer").get("/staff/acknowledgements/",
                                      query_string={"segment": segment["id"]}))
    pending = page.split('id="pending-count"')[1].split("</table>")[0]
    assert f'/staff/donors/{ids["Ann"]}"' in pending
    assert f'/staff/donors/{ids["=Cy"]}"' not in pending


def test_tags_on_a_donor_page_and_a_segment_by_tag(api, web_as):
    ids = _world(api)
    fundraiser = web_as("fundraiser")
    path = f"/staff/donors/{ids['Ben']}/tags"
    refused = submit(fundraiser, path, {"tags": "Gala 2026"})
    assert refused.status_code == 422
    assert "is not a tag" in html.unescape(refused.get_data(as_text=True))
    assert submit(fundraiser, path, {"tags": "gala-2026, board"}).status_code == 302
    detail = _text(fundraiser.get(f"/staff/donors/{ids['Ben']}"))
    assert '<span class="tag">board</span>' in detail
    tagged = _text(fundraiser.get("/staff/donors/", query_string={"tag": "gala-2026"}))
    assert _donor_ids(tagged) == [ids["Ben"]]


def test_reports_count_only_a_segments_donors(api, web_as):
    ids = _world(api)
    segment = b.ok(api.post("/segments", {"name": "Big givers",
                                          "criteria": {"giving_min": "1,000"}}))
    fundraiser = web_as("fundraiser")
    everyone = _text(fundraiser.get("/staff/reports/", query_string={"year": 2026}))
    narrowed = _text(fundraiser.get("/staff/reports/", query_string={"year": 2026,
                                                                     "segment": segment["id"]}))
    assert "First-time donors (3)" in everyone
    assert "First-time donors (2)" in narrowed and 'id="segment-note"' in narrowed
    link = re.search(r'href="(/staff/reports/first-time.csv[^"]*)"', narrowed).group(1)
    assert f"segment={segment['id']}" in link
    response = fundraiser.get(link)
    assert sorted(int(r["donor_id"]) for r in rows_of(response)) == sorted(
        [ids["Ann"], ids["=Cy"]])
    assert fundraiser.get("/staff/reports/?segment=999999").status_code == 404

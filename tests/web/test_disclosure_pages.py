"""Disclosure pages: public ones need no sign-in and name no donor; staff preview any
period; reviewers publish, which freezes the figures; a new one is compared with the last."""

from __future__ import annotations

import hashlib
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from markupsafe import escape
from pypdf import PdfReader
from sqlalchemy import select

from models import AuditEntry, PublishedDisclosure
from tests.builders import gift, ok
from tests.disclosure_world import (
    END,
    INTERNAL_NOTES,
    PEOPLE,
    PUBLIC_NOTES,
    START,
    assert_matches,
    build_ledger,
    expected,
    read_tables,
)
from tests.web.ledger_reads import audit, objects, text
from tests.webtools import post_refused, submit

PERIOD = f"from={START.isoformat()}&to={END.isoformat()}"
PREVIEW = f"/staff/disclosures/preview?{PERIOD}"


@pytest.fixture
def ledger(api, api_as):
    return build_ledger(api, api_as("reviewer", "second-reviewer"))


def publish(client, start=START, end=END):
    query = f"from={start.isoformat()}&to={end.isoformat()}"
    return submit(client, f"/staff/disclosures/preview?{query}",
                  {"start": start.isoformat(), "end": end.isoformat()},
                  action="/staff/disclosures/publish")


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def published(db) -> list[PublishedDisclosure]:
    return objects(db, select(PublishedDisclosure).order_by(PublishedDisclosure.id))


def test_public_pages_need_no_sign_in(client, ledger, web_as):
    assert "No disclosure has been published yet" in text(client.get("/disclosures"))
    assert client.get("/disclosures/").status_code == 200
    assert publish(web_as("reviewer")).status_code == 302
    for path in ("/disclosures", "/disclosures/1", "/disclosures/1.json", "/disclosures/1.md",
                 "/disclosures/1.pdf", "/disclosures/1/changes"):
        response = client.get(path)
        assert response.status_code == 200, path
    assert client.get("/disclosures/2").status_code == 404
    assert client.get("/disclosures/1.pdf").mimetype == "application/pdf"
    assert client.get("/disclosures/1.md").mimetype == "text/markdown"


def test_staff_pages_need_sign_in_and_publishing_needs_review(client, ledger, web_as, db):
    for path in ("/staff/disclosures/", PREVIEW, f"/staff/disclosures/preview.json?{PERIOD}",
                 f"/staff/disclosures/preview.pdf?{PERIOD}"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert client.post("/staff/disclosures/publish").status_code in (302, 400)
    for role in ("viewer", "fundraiser", "finance"):
        staff = web_as(role)
        assert staff.get("/staff/disclosures/").status_code == 200
        page = staff.get(PREVIEW)
        assert page.status_code == 200 and "Publish this disclosure" not in text(page)
        refused = post_refused(staff, PREVIEW, "/staff/disclosures/publish",
                               {"start": START.isoformat(), "end": END.isoformat()})
        assert refused.status_code == 403, role
    assert published(db) == []
    page = web_as("reviewer").get(PREVIEW)
    assert "Publish this disclosure" in text(page)
    assert publish(web_as("admin")).status_code == 302
    assert len(published(db)) == 1
    assert ">Disclosures</a>" in text(web_as("viewer").get("/staff/disclosures/"))


def test_preview_shows_every_figure_in_each_format(ledger, web_as, db):
    staff = web_as("viewer")
    content = json.loads(staff.get(f"/staff/disclosures/preview.json?{PERIOD}").data)
    assert_matches(content, expected(read_tables(db), START, END))
    page = text(staff.get(PREVIEW))
    markdown = text(staff.get(f"/staff/disclosures/preview.md?{PERIOD}"))
    pdf = pdf_text(staff.get(f"/staff/disclosures/preview.pdf?{PERIOD}").data)
    peak = content["lab_employee_share_max"]
    for value in ("5000.00 USD", "500.00 USD", content["lab_employee_share_at_end"], peak["value"],
                  peak["on"], PUBLIC_NOTES["corp_ok"], PUBLIC_NOTES["senior"],
                  "No public justification given.",
                  "Research API credits", "25000.00 USD", "Frontier Lab Foundation"):
        assert value in page, value
        assert value in markdown, value
        assert value in pdf, value
    for note in INTERNAL_NOTES:  # reviewers' internal notes are never published
        assert note not in page and note not in markdown and note not in pdf
    assert "Nothing published yet" in page


def test_preview_refuses_a_bad_period(web_as):
    staff = web_as("viewer")
    response = staff.get("/staff/disclosures/preview?from=2026-05-01&to=2026-04-01")
    assert response.status_code == 422
    assert "must not end before it starts" in text(response)
    assert staff.get("/staff/disclosures/preview?from=x&to=y").status_code == 422
    assert staff.get("/staff/disclosures/preview.json?from=x&to=y").status_code == 422


def test_public_page_shows_figures_with_how_to_reproduce_and_no_donor_names(client, ledger, web_as):
    publish(web_as("reviewer"))
    page = text(client.get("/disclosures/1"))
    content = json.loads(client.get("/disclosures/1.json").data)
    for value in (content["lab_employee_share_at_end"], content["lab_employee_share_max"]["on"],
                  PUBLIC_NOTES["corp_ok"], PUBLIC_NOTES["senior"], "Pre-release model access",
                  "Exceptions to these promises", content["sources"]["exceptions_accepted"],
                  content["policy"][0]["statement"], content["sources"]["lab_corporate_accepted"]):
        assert str(escape(value)) in page, value
    for note in INTERNAL_NOTES:
        assert str(escape(note)) not in page
    anchors = set(re.findall(r'href="#(source-[\w]+)"', page))
    assert {"source-lab_evaluation_payments_accepted", "source-senior_decision_maker_gifts_accepted",
            "source-lab_employee_share_at_end", "source-lab_corporate_accepted",
            "source-in_kind", "source-policy"} <= anchors
    for anchor in anchors:
        assert f'id="{anchor}"' in page
    for path in ("/disclosures", "/disclosures/1", "/disclosures/1.json", "/disclosures/1.md",
                 "/disclosures/1/changes"):
        body = text(client.get(path))
        for name in PEOPLE:
            assert name not in body, (path, name)
    pdf = pdf_text(client.get("/disclosures/1.pdf").data)
    for name in PEOPLE:
        assert name not in pdf
    assert content["lab_employee_share_at_end"] in pdf


def test_publishing_freezes_the_figures(client, api, ledger, web_as, db, audit_key):
    reviewer = web_as("reviewer")
    [head_before] = objects(db, select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))
    want = expected(read_tables(db), START, END)
    response = publish(reviewer)
    assert response.status_code == 302 and response.headers["Location"].endswith("/disclosures/1")

    [record] = published(db)
    frozen = client.get("/disclosures/1.json")
    assert frozen.data.decode() == record.content
    assert hashlib.sha256(frozen.data).hexdigest() == record.content_hash \
        == frozen.headers["X-Content-SHA256"]
    content = json.loads(frozen.data)
    assert_matches(content, want)
    assert record.audit_head == head_before == content["audit_chain_head"]
    assert (record.period_start, record.period_end) == (START, END)
    [entry] = audit(db, "disclosure.published")
    assert entry.entity_id == record.id and entry.data["content_hash"] == record.content_hash
    assert entry.data["audit_head"] == head_before and entry.actor == "web:web-reviewer@example.org"
    assert record.content_hash in text(client.get("/disclosures/1"))
    assert record.content_hash in pdf_text(client.get("/disclosures/1.pdf").data)

    # The ledger changes: the published disclosure does not.
    g = ledger.gifts
    gift(api, ledger.lee["id"], "4000.00", "2026-06-10")
    ok(api.post(f"/gifts/{g['dana']['id']}/refund", {"amount": "1000.00",
                                                     "refunded_on": "2026-06-20"}))
    for path in ("/disclosures/1.json",):
        assert client.get(path).data == frozen.data
    assert "(verified)" in text(client.get("/disclosures/1"))
    live = json.loads(web_as("viewer").get(f"/staff/disclosures/preview.json?{PERIOD}").data)
    assert live["lab_employee_share_at_end"] != content["lab_employee_share_at_end"]
    assert_matches(live, expected(read_tables(db), START, END))

    # The preview compares with the last published; a new publication is a new version.
    preview = text(reviewer.get(PREVIEW))
    assert "Compared with the last published disclosure" in preview
    assert re.search(r"Lab-employee share at period end</th><td>"
                     + re.escape(content["lab_employee_share_at_end"]) + r"</td><td>"
                     + re.escape(live["lab_employee_share_at_end"]) + r"</td>\s*<td><strong>changed",
                     preview), preview
    assert publish(reviewer).status_code == 302
    first, second = published(db)
    assert first.content == record.content and first.content_hash == record.content_hash
    assert second.content_hash != first.content_hash
    assert json.loads(second.content)["lab_employee_share_at_end"] == live["lab_employee_share_at_end"]

    changes = text(client.get("/disclosures/2/changes"))
    row = re.search(r"<tr class=\"changed\"><th scope=\"row\">Lab-employee share at period end</th>"
                    r"<td>([\d.]+)</td><td>([\d.]+)</td>", changes)
    assert row and row.groups() == (content["lab_employee_share_at_end"],
                                    live["lab_employee_share_at_end"])
    assert re.search(r'<tr class="same"><th scope="row">Lab payments for evaluations accepted',
                     changes)
    assert "first published disclosure" in text(client.get("/disclosures/1/changes"))
    assert "What changed since the previous disclosure" in text(client.get("/disclosures/2"))


def test_a_period_ending_after_today_is_not_published(web_as, db):
    """Its figures would be zeros for days still to come, frozen for good."""
    today = datetime.now(UTC).date()  # the test app's ORG_TIMEZONE is UTC
    reviewer = web_as("reviewer")
    tomorrow = today + timedelta(days=1)
    response = publish(reviewer, today.replace(day=1), tomorrow)
    assert response.status_code == 422
    assert (f"Nothing was published: the period ends on {tomorrow.isoformat()}, after today "
            f"({today.isoformat()})") in text(response)
    assert published(db) == []
    ended = publish(reviewer, today.replace(day=1), today)
    assert ended.status_code == 302 and len(published(db)) == 1


def test_publishing_needs_a_valid_period_and_the_csrf_token(web_as, db):
    reviewer = web_as("reviewer")
    # The preview's form, its hidden period altered: the server checks it again.
    response = submit(reviewer, f"/staff/disclosures/preview?from={START}&to={END}",
                      {"start": END.isoformat(), "end": START.isoformat()},
                      action="/staff/disclosures/publish")
    assert response.status_code == 422
    assert "Nothing was published: the period must not end before it starts." in text(response)
    page = reviewer.get("/staff/disclosures/")
    assert reviewer.post("/staff/disclosures/publish",
                         data={"start": "2026-01-01", "end": "2026-01-31"}).status_code == 400
    assert page.status_code == 200
    assert published(db) == []


def test_staff_text_reaches_the_public_markdown_as_literal_text(client, api, web_as):
    """Links, images, HTML and Markdown typed into names, descriptions and reasons are shown as
    typed in every format, never rendered as markup."""
    from html import unescape

    from markdown_it import MarkdownIt

    from tests.builders import org_donor, organization

    lab_name = "Lab *Bold* <i>x</i>"
    description = "<img src=x onerror=alert(1)> [click](https://evil.example/) & ~~gone~~"
    reason = "1. <script>alert(1)</script> ![pic](https://evil.example/p.png) `code` _em_ | x"
    lab = organization(api, lab_name, covered_lab=True)
    donor = org_donor(api, "Lab corporate", lab["id"])
    held = gift(api, donor["id"], "2000.00", "2026-04-01")
    # Only the public note is published (the reason is internal): the hostile text goes there.
    ok(api.post(f"/gifts/{held['id']}/review", {"outcome": "accept", "reason": "internal",
                                                "public_note": reason}))
    ok(api.post("/in-kind", {"organization_id": lab["id"], "description": f"# {description}",
                             "purpose": "research", "start_date": "2026-01-01"}))
    assert publish(web_as("reviewer")).status_code == 302

    markdown = client.get("/disclosures/1.md").get_data(as_text=True)
    rendered = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(
        markdown)
    for markup in ("<img", "<script", "<i>", "<a ", "<em>Bold", "<em>em", "<code>code", "<s>",
                   "<ol"):
        assert markup not in rendered, (markup, rendered)
    assert rendered.count("<h1>") == 1 and rendered.count("<strong>") == 1  # title, organisation
    shown = unescape(re.sub(r"<[^>]+>", "", rendered))
    for typed in (lab_name, f"# {description}", reason):
        assert typed in shown, typed
    # The HTML page escapes the same text, and the PDF draws it as typed.
    page = client.get("/disclosures/1").get_data(as_text=True)
    assert str(escape(description)) in page and "<img src=x" not in page
    pdf = pdf_text(client.get("/disclosures/1.pdf").data)
    assert "[click](https://evil.example/)" in pdf and "<script>alert(1)</script>" in pdf

"""Letters in a real browser: a fundraiser records a tribute gift that bought goods (a gala
dinner) on the staff form, sees both on the gift's page, and downloads its acknowledgement
(the quid-pro-quo statement: the value and the deductible amount) and the tribute notice
(no amount), read back with pypdf."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader

from tests.browser.conftest import browser_required
from tests.builders import ok

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips, or fails under REQUIRE_BROWSER
    if browser_required():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)


def _words(path) -> str:
    reader = PdfReader(io.BytesIO(path.read_bytes()))
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def test_record_a_tribute_gift_with_goods_and_download_its_letters(api, staff, shot, tmp_path):
    today = datetime.now(UTC).date()
    donor = ok(api.post("/donors", {"type": "person", "name": "Gia Giver",
                                    "email": "gia@example.org",
                                    "postal_address": "12 Oak Street\nSpringfield, IL 62701"}))

    fundraiser = staff("fundraiser")
    fundraiser.goto("/staff/gifts/new")
    fundraiser.select_option("#donor_id", str(donor["id"]))
    fundraiser.fill("#amount", "1,000.00")
    fundraiser.fill("#currency", "USD")
    fundraiser.fill("#received_on", today.isoformat())
    fundraiser.fill("#goods_description", "a gala dinner for two")
    fundraiser.fill("#goods_value", "150.00")
    fundraiser.select_option("#tribute_kind", "memory")
    fundraiser.fill("#tribute_name", "Grace Hopper")
    fundraiser.fill("#notify_name", "Mary Hopper")
    fundraiser.fill("#notify_address", "7 Harbour Road\nArlington, VA 22201")
    shot(fundraiser, "80-gift-form-tribute-goods")
    fundraiser.get_by_role("button", name=re.compile("Check")).click()
    fundraiser.get_by_role("button", name=re.compile("Record gift")).click()
    fundraiser.wait_for_url(re.compile(r"/staff/gifts/\d+$"))
    gift_id = int(fundraiser.url.rsplit("/", 1)[1])
    expect(fundraiser.locator("#gift-goods")).to_contain_text("a gala dinner for two")
    expect(fundraiser.locator("#gift-goods")).to_contain_text("deductible")
    expect(fundraiser.locator("#gift-tribute")).to_contain_text("In memory of Grace Hopper")
    shot(fundraiser, "81-gift-page-tribute-goods")

    with fundraiser.expect_download() as notice:
        fundraiser.evaluate("""url => { const a = document.createElement('a'); a.href = url;
            a.download = 'notice.pdf'; document.body.appendChild(a); a.click(); }""",
                            fundraiser.locator("#tribute-letter").get_attribute("href"))
    notice_path = tmp_path / "notice.pdf"
    notice.value.save_as(notice_path)
    words = _words(notice_path)
    assert "Dear Mary Hopper," in words and "in memory of Grace Hopper" in words
    assert "1,000.00" not in words and "$" not in words

    fundraiser.goto(f"/staff/acknowledgements/gifts/{gift_id}")
    expect(fundraiser.locator("article.letter")).to_contain_text(
        "good-faith estimated value of $150.00")
    expect(fundraiser.locator("article.letter")).to_contain_text("12 Oak Street")
    shot(fundraiser, "82-acknowledgement-with-goods")
    with fundraiser.expect_download() as letter:
        fundraiser.evaluate("""url => { const a = document.createElement('a'); a.href = url;
            a.download = 'letter.pdf'; document.body.appendChild(a); a.click(); }""",
                            fundraiser.get_by_role("link", name="PDF").get_attribute("href"))
    letter_path = tmp_path / "letter.pdf"
    letter.value.save_as(letter_path)
    words = _words(letter_path)
    assert "Thank you for your gift to Independent Evaluation Institute of $1,000.00" in words
    assert ("limited to the excess of the money contributed over the value of the goods or "
            "services provided: $850.00.") in words
    assert "Gia Giver 12 Oak Street Springfield, IL 62701" in words

    recorded = ok(api.get(f"/gifts/{gift_id}"), 200)
    assert recorded["goods_or_services"] == {"description": "a gala dinner for two",
                                             "value": "150.00"}
    assert recorded["tribute"]["name"] == "Grace Hopper"

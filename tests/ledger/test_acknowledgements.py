"""Donor acknowledgements: the $250 threshold, non-cash gifts described without a value,
annual statements, e-mail with the PDF attached (to a local SMTP server), the record and
audit entry of each sending, and refunds made after a letter was sent."""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import re
import socket
from datetime import date

import pytest
from aiosmtpd.controller import Controller
from pypdf import PdfReader
from sqlalchemy import select

from app.ledger.refund_reversals import reverse_refund
from models import Acknowledgement
from tests.builders import accepted_gift, gift, ok, person
from tests.conftest import TEST_ACTOR
from tests.web.ledger_reads import audit, objects, text
from tests.webtools import post_refused, submit

YEAR = 2026


class Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def inbox(app):
    """A debugging SMTP server on a free loopback port, and the app configured to use it."""
    handler = Inbox()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_USE_TLS=False,
                      SMTP_USERNAME=None, SMTP_PASSWORD=None, MAIL_FROM="receipts@example.org",
                      ORG_EIN="12-3456789", ORG_ADDRESS="1 Evaluation Way\nBerkeley, CA 94704")
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def donor(api):
    return person(api, "Dana Donor", "dana@example.org")


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def letter_path(gift_id: int) -> str:
    return f"/staff/acknowledgements/gifts/{gift_id}"


def sent(db) -> list[Acknowledgement]:
    return objects(db, select(Acknowledgement).order_by(Acknowledgement.id))


def send(client, path: str, to: str = "dana@example.org", **extra):
    return submit(client, path, {"send_to": to, "goods_description": "", "goods_value": "",
                                 "action": "send", **extra})


# --- who gets a letter ---------------------------------------------------------------------------

def test_the_threshold_is_250_in_the_reporting_currency(api, donor, web_as):
    below = gift(api, donor["id"], "249.99", "2026-03-01")
    at = gift(api, donor["id"], "250.00", "2026-03-02")
    euros = gift(api, donor["id"], "240.00", "2026-03-03", currency="EUR", fx_rate="1.1")
    yen = gift(api, donor["id"], "30000", "2026-03-04", currency="JPY", fx_rate="0.0067")
    staff = web_as("viewer")
    assert staff.get(letter_path(below["id"])).status_code == 404
    assert staff.get(letter_path(below["id"]) + ".pdf").status_code == 404
    assert staff.get(letter_path(yen["id"])).status_code == 404  # 201.00 USD
    page = text(staff.get(letter_path(at["id"])))
    # Dates and amounts as people read them (ORG_LOCALE, en_US by default).
    assert "Thank you for your gift to Independent Evaluation Institute of $250.00, received " \
           "on March 2, 2026." in page
    assert "No goods or services were provided in exchange for this contribution." in page
    assert "€240.00" in text(staff.get(letter_path(euros["id"])))  # 264.00 USD

    listing = text(staff.get("/staff/acknowledgements/"))
    linked = set(map(int, re.findall(r"/staff/acknowledgements/gifts/(\d+)\"", listing)))
    assert linked == {at["id"], euros["id"]}


def test_the_threshold_applies_to_what_was_kept(api, donor, web_as):
    made = gift(api, donor["id"], "300.00", "2026-03-01")
    ok(api.post(f"/gifts/{made['id']}/refund", {"amount": "50.01", "refunded_on": "2026-03-05"}))
    assert web_as("viewer").get(letter_path(made["id"])).status_code == 404  # 249.99 kept
    kept = gift(api, donor["id"], "300.00", "2026-03-01")
    ok(api.post(f"/gifts/{kept['id']}/refund", {"amount": "50.00", "refunded_on": "2026-03-05"}))
    assert "of $250.00" in text(web_as("viewer").get(letter_path(kept["id"])))


def test_held_and_rejected_gifts_get_no_letter(api, web_as):
    from tests.builders import World

    world = World(api)
    held = gift(api, world.lab_donor["id"], "5000.00", "2026-03-01")
    assert held["status"] == "held"
    rejected = gift(api, world.lab_donor["id"], "5000.00", "2026-03-01",
                    purpose="evaluation_services")
    for made in (held, rejected):
        assert web_as("viewer").get(letter_path(made["id"])).status_code == 404


def test_a_non_cash_gift_is_described_without_a_value(api, donor, web_as):
    laptops = gift(api, donor["id"], "5400.00", "2026-04-01", kind="in_kind",
                   description="Six refurbished laptops")
    staff = web_as("viewer")
    page = text(staff.get(letter_path(laptops["id"])))
    assert "non-cash gift" in page and "Six refurbished laptops" in page
    assert "5400" not in page and "5,400" not in page
    pdf = pdf_text(staff.get(letter_path(laptops["id"]) + ".pdf").data)
    assert "Six refurbished laptops" in pdf and "5400" not in pdf


# --- annual statements ---------------------------------------------------------------------------

def test_the_annual_statement_lists_and_sums_the_year(api, donor, web_as):
    other = person(api, "Olive Other")
    gift(api, donor["id"], "100.00", "2025-12-31")              # the year before
    gift(api, donor["id"], "100.00", "2026-01-01")
    partly = gift(api, donor["id"], "400.00", "2026-06-15")
    ok(api.post(f"/gifts/{partly['id']}/refund", {"amount": "150.00", "refunded_on": "2026-06-20"}))
    whole = gift(api, donor["id"], "80.00", "2026-07-01")
    ok(api.post(f"/gifts/{whole['id']}/refund", {"refunded_on": "2026-07-02"}))
    gift(api, donor["id"], "49.99", "2026-11-30")  # no later: a gift is never dated ahead
    gift(api, donor["id"], "120.00", "2026-08-01", currency="EUR", fx_rate="1.1")
    gift(api, donor["id"], "900.00", "2026-09-09", kind="in_kind", description="Office chairs")
    gift(api, other["id"], "777.00", "2026-05-05")              # someone else's
    page = text(web_as("viewer").get(f"/staff/acknowledgements/donors/{donor['id']}/{YEAR}"))
    lines = re.findall(r"(\w+ \d+, 2026): ([^<]+)(?:<br>|</p>)", page)
    assert lines == [("January 1, 2026", "$100.00"), ("June 15, 2026", "$250.00"),
                     ("August 1, 2026", "€120.00"),
                     ("September 9, 2026", "non-cash gift: Office chairs"),
                     ("November 30, 2026", "$49.99")]
    # 100.00 + 250.00 + 49.99 USD and 120.00 EUR: each currency on its own, never converted.
    assert "Total cash given in 2026: €120.00; $399.99." in page
    assert "900" not in page and "777" not in page and "Olive" not in page
    assert "No goods or services were provided in exchange for these contributions." in page
    pdf = pdf_text(web_as("viewer").get(f"/staff/acknowledgements/donors/{donor['id']}/{YEAR}.pdf").data)
    assert "Total cash given in 2026: €120.00; $399.99." in pdf
    assert web_as("viewer").get(f"/staff/acknowledgements/donors/{donor['id']}/2019").status_code == 404
    picker = web_as("viewer").get(f"/staff/acknowledgements/annual?donor_id={donor['id']}&year=2026")
    assert picker.headers["Location"].endswith(f"/staff/acknowledgements/donors/{donor['id']}/2026")


# --- sending --------------------------------------------------------------------------------------

def test_sending_emails_the_letter_with_the_pdf_and_records_it(api, donor, web_as, inbox, db):
    made = gift(api, donor["id"], "1250.00", "2026-03-02")
    fundraiser = web_as("fundraiser")
    page = text(fundraiser.get(letter_path(made["id"])))
    assert 'value="dana@example.org"' in page  # the donor's address, to confirm or change
    response = send(fundraiser, letter_path(made["id"]))
    assert response.status_code == 302, text(response)

    [(sender, recipients, message)] = inbox.messages
    assert (sender, recipients) == ("receipts@example.org", ["dana@example.org"])
    assert message["Subject"] == "Independent Evaluation Institute: acknowledgement of your gift"
    body = message.get_body(("plain",)).get_content()
    assert "$1,250.00" in body and "EIN 12-3456789" in body and "1 Evaluation Way" in body
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"acknowledgement-gift-{made['id']}.pdf"
    pdf = pdf_text(attachment.get_content())
    for value in ("Independent Evaluation Institute", "EIN 12-3456789", "$1,250.00", "March 2, 2026",
                  "No goods or services were provided in exchange for this contribution."):
        assert value in pdf, value

    [record] = sent(db)
    assert (record.kind, record.gift_id, record.donor_id, record.year) == ("gift", made["id"],
                                                                           donor["id"], None)
    assert record.sent_to == "dana@example.org"
    assert record.content_hash == hashlib.sha256(record.content.encode()).hexdigest()
    # The hash identifies the PDF in its metadata, not in what the donor reads.
    assert record.content_hash not in pdf
    assert PdfReader(io.BytesIO(attachment.get_content())).metadata["/Keywords"] == (
        f"content-sha256:{record.content_hash}")
    [entry] = audit(db, "acknowledgement.sent")
    assert entry.entity_id == record.id and entry.data["content_hash"] == record.content_hash
    assert entry.actor == "web:web-fundraiser@example.org"

    after = text(fundraiser.get(letter_path(made["id"])))
    assert record.content_hash in after  # listed as sent
    listing = text(fundraiser.get("/staff/acknowledgements/"))
    assert f"/staff/acknowledgements/gifts/{made['id']}\">Letter" not in listing
    assert f"gift {made['id']}" in listing  # under "recently sent"


def test_goods_or_services_are_described_with_a_good_faith_estimate(api, donor, web_as, inbox, db):
    made = gift(api, donor["id"], "500.00", "2026-03-02")
    fundraiser = web_as("fundraiser")
    response = send(fundraiser, letter_path(made["id"]), goods_description="a gala dinner ticket",
                    goods_value="75.00")
    assert response.status_code == 302
    [(_, _, message)] = inbox.messages
    body = message.get_body(("plain",)).get_content()
    assert "No goods or services" not in body
    assert ("In exchange for this contribution, Independent Evaluation Institute provided a gala "
            "dinner ticket, with a good-faith estimated value of $75.00.") in body
    [record] = sent(db)
    assert (record.goods_description, record.goods_value_minor) == ("a gala dinner ticket", 7500)


@pytest.mark.parametrize(("extra", "field_message"), [
    ({"goods_description": "a dinner", "goods_value": ""}, "good-faith estimate"),
    ({"goods_description": "", "goods_value": "75.00"}, "Describe what was provided"),
    ({"goods_description": "a dinner", "goods_value": "7.5.0"}, "plain decimal"),
    ({"send_to": "not-an-address"}, "Invalid email address"),
])
def test_a_wrong_form_sends_nothing(api, donor, web_as, inbox, db, extra, field_message):
    made = gift(api, donor["id"], "500.00", "2026-03-02")
    response = send(web_as("fundraiser"), letter_path(made["id"]), **extra)
    assert response.status_code == 422
    assert field_message in text(response)
    assert inbox.messages == [] and sent(db) == []


def test_the_letter_can_be_updated_before_sending(api, donor, web_as, inbox, db):
    made = gift(api, donor["id"], "500.00", "2026-03-02")
    response = send(web_as("fundraiser"), letter_path(made["id"]), action="preview",
                    goods_description="a book", goods_value="0")
    assert response.status_code == 200
    page = text(response)
    assert "provided a book, with a good-faith estimated value of $0.00" in page
    assert "goods_description=a+book" in page  # the PDF link carries the same statement
    assert inbox.messages == [] and sent(db) == []


def test_annual_statement_is_emailed_and_recorded(api, donor, web_as, inbox, db):
    gift(api, donor["id"], "100.00", "2026-01-05")
    gift(api, donor["id"], "150.00", "2026-02-05")
    path = f"/staff/acknowledgements/donors/{donor['id']}/{YEAR}"
    assert send(web_as("fundraiser"), path).status_code == 302
    [(_, _, message)] = inbox.messages
    assert message["Subject"] == "Independent Evaluation Institute: your 2026 giving statement"
    [attachment] = list(message.iter_attachments())
    assert "Total cash given in 2026: $250.00." in pdf_text(attachment.get_content())
    [record] = sent(db)
    assert (record.kind, record.year, record.gift_id) == ("annual", YEAR, None)


def test_without_mail_settings_nothing_is_sent(api, donor, web_as, db):
    made = gift(api, donor["id"], "500.00", "2026-03-02")
    response = send(web_as("fundraiser"), letter_path(made["id"]))
    assert response.status_code == 422 and "E-mail is not configured" in text(response)
    assert sent(db) == []


def test_a_mail_server_that_is_down_records_nothing(app, api, donor, web_as, db):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=_free_port(), SMTP_USE_TLS=False,
                      MAIL_FROM="receipts@example.org")
    made = gift(api, donor["id"], "500.00", "2026-03-02")
    response = send(web_as("fundraiser"), letter_path(made["id"]))
    assert response.status_code == 502 and "Not sent" in text(response)
    assert sent(db) == [] and audit(db, "acknowledgement.sent") == []


# --- refunds after a letter -----------------------------------------------------------------------

def test_refunds_after_an_acknowledgement_are_flagged(api, donor, web_as, inbox, db):
    early = gift(api, donor["id"], "600.00", "2026-03-01")
    ok(api.post(f"/gifts/{early['id']}/refund", {"amount": "100.00", "refunded_on": "2026-03-02"}))
    late = gift(api, donor["id"], "800.00", "2026-03-03")
    quiet = gift(api, donor["id"], "900.00", "2026-03-04")
    fundraiser = web_as("fundraiser")
    for made in (early, late, quiet):
        assert send(fundraiser, letter_path(made["id"])).status_code == 302
    assert "None." in text(fundraiser.get("/staff/acknowledgements/refunded"))

    ok(api.post(f"/gifts/{late['id']}/refund", {"amount": "300.00", "refunded_on": "2026-03-10"}))
    page = text(web_as("viewer").get("/staff/acknowledgements/refunded"))
    flagged = set(map(int, re.findall(r"/staff/gifts/(\d+)\"", page)))
    assert flagged == {late["id"]}
    assert "300.00 USD" in page and "dana@example.org" in page
    assert '<span class="count">1</span>' in text(fundraiser.get("/staff/acknowledgements/"))


def test_a_refund_after_an_annual_statement_is_flagged(api, donor, web_as, inbox, db):
    small = gift(api, donor["id"], "40.00", "2026-05-01")
    other_year = gift(api, donor["id"], "40.00", "2025-05-01")
    path = f"/staff/acknowledgements/donors/{donor['id']}/{YEAR}"
    assert send(web_as("fundraiser"), path).status_code == 302
    ok(api.post(f"/gifts/{other_year['id']}/refund", {"amount": "10.00"}))
    assert "None." in text(web_as("viewer").get("/staff/acknowledgements/refunded"))
    ok(api.post(f"/gifts/{small['id']}/refund", {"amount": "10.00"}))
    page = text(web_as("viewer").get("/staff/acknowledgements/refunded"))
    assert set(map(int, re.findall(r"/staff/gifts/(\d+)\"", page))) == {small["id"]}
    assert "statement 2026" in page


def test_a_refund_reversed_after_a_letter_is_flagged_and_the_letter_counts_the_money_again(
        api, donor, web_as, inbox, db):
    """A refund that failed later (Stripe) is reversed: a letter written after the refund
    understates the gift, so the reversal is flagged too, and a new letter counts it."""
    made = gift(api, donor["id"], "800.00", "2026-03-03")
    refund = ok(api.post(f"/gifts/{made['id']}/refund",
                         {"amount": "300.00", "refunded_on": "2026-03-10"}))
    assert send(web_as("fundraiser"), letter_path(made["id"])).status_code == 302
    assert "None." in text(web_as("viewer").get("/staff/acknowledgements/refunded"))

    reversal = reverse_refund(db, refund["id"], TEST_ACTOR, reversed_on=date(2026, 3, 20),
                              reason="the refund failed")
    page = text(web_as("viewer").get("/staff/acknowledgements/refunded"))
    assert f"reversal of refund {refund['id']}" in page and "-300.00 USD" in page
    assert reversal.row.amount_minor == -30000
    letter = text(web_as("fundraiser").get(letter_path(made["id"])))
    assert "800.00" in letter and "500.00" not in letter


# --- the list: refunds, every gift, letters sent by post -----------------------------------------

def test_a_partly_refunded_gift_awaiting_a_letter_is_listed_at_its_net_amount(api, donor, web_as):
    """PostgreSQL sums BIGINT refunds as NUMERIC: the list must still show integer money."""
    made = gift(api, donor["id"], "300.00", "2026-03-01")
    ok(api.post(f"/gifts/{made['id']}/refund", {"amount": "10.00", "refunded_on": "2026-03-05"}))
    ok(api.post(f"/gifts/{made['id']}/refund", {"amount": "0.01", "refunded_on": "2026-03-06"}))
    listing = web_as("viewer").get("/staff/acknowledgements/")
    assert listing.status_code == 200
    assert "289.99 USD" in text(listing) and letter_path(made["id"]) in text(listing)


def test_the_money_filter_refuses_anything_but_integer_minor_units():
    from decimal import Decimal

    from models.money import display_amount

    assert display_amount(28999, "USD") == "289.99 USD"
    for wrong in (Decimal(28999), 289.99, True):
        with pytest.raises(TypeError, match="integer minor units"):
            display_amount(wrong, "USD")


def test_every_gift_awaiting_a_letter_can_be_reached_and_is_counted(api, donor, web_as):
    from app.web.acknowledgements import PENDING_PER_PAGE

    # The oldest: listed last. Large gifts are held, so a reviewer accepts them first.
    biggest = [accepted_gift(api, donor["id"], amount, f"2025-01-0{day}")
               for day, amount in ((1, "3000000.00"), (2, "2000000.00"), (3, "1500000.00"))]
    for n in range(PENDING_PER_PAGE):
        gift(api, donor["id"], "250.00", f"2026-0{1 + n // 28}-{1 + n % 28:02d}")
    viewer = web_as("viewer")
    first = text(viewer.get("/staff/acknowledgements/"))
    total = PENDING_PER_PAGE + 3
    assert f'<span class="count" id="pending-count">{total}</span>' in first
    assert f"{total} gift(s) await a letter" in first
    listed = re.findall(r"/staff/acknowledgements/gifts/(\d+)\"", first)
    assert len(listed) == PENDING_PER_PAGE
    # Follow the pager as a user would.
    following = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = text(viewer.get(following))
    assert "Page 2 of 2" in second
    assert [int(i) for i in re.findall(r"/staff/acknowledgements/gifts/(\d+)\"", second)] == [
        g["id"] for g in reversed(biggest)]
    assert "3,000,000.00 USD" in second and "1,500,000.00 USD" in second


def test_finance_records_a_letter_posted_when_no_mail_is_configured(api, donor, web_as, db):
    made = gift(api, donor["id"], "500.00", "2026-03-02")
    finance = web_as("finance")
    page = text(finance.get(letter_path(made["id"])))
    assert "Record as sent by post" in page and "Send with the PDF attached" not in page

    refused = submit(finance, letter_path(made["id"]), {"posted_to": "  "},
                     action=letter_path(made["id"]) + "/posted")
    assert refused.status_code == 422 and sent(db) == []

    response = submit(finance, letter_path(made["id"]),
                      {"posted_to": "Dana Donor\n2 Main St\nOakland, CA 94601"},
                      action=letter_path(made["id"]) + "/posted")
    assert response.status_code == 302
    [record] = sent(db)
    assert (record.kind, record.gift_id, record.channel) == ("gift", made["id"], "post")
    assert record.sent_to == "Dana Donor\n2 Main St\nOakland, CA 94601"
    assert record.content_hash == hashlib.sha256(record.content.encode()).hexdigest()
    [entry] = audit(db, "acknowledgement.sent")
    assert entry.entity_id == record.id and entry.data["channel"] == "post"

    listing = text(finance.get("/staff/acknowledgements/"))
    assert letter_path(made["id"]) + '"' not in listing.split("<h2>Annual giving statement")[0]
    assert "by post" in listing.split("<h2>Recently sent")[1]
    assert "by post" in text(finance.get(letter_path(made["id"])))


def test_an_annual_statement_posted_with_its_goods_statement(api, donor, web_as, db):
    gift(api, donor["id"], "40.00", "2026-05-01")
    path = f"/staff/acknowledgements/donors/{donor['id']}/{YEAR}"
    fundraiser = web_as("fundraiser")
    preview = submit(fundraiser, path, {"send_to": "dana@example.org", "action": "preview",
                                        "goods_description": "A dinner", "goods_value": "30.00"})
    assert preview.status_code == 200
    form_page = text(preview)
    assert 'name="goods_description" value="A dinner"' in form_page
    # Post the "sent by post" form exactly as the previewed page gives it.
    from tests.webtools import page_form

    form = page_form(form_page, path, path + "/posted")
    response = fundraiser.post(form.action, data={**form.fields, "posted_to": "2 Main St"})
    assert response.status_code == 302
    [record] = sent(db)
    assert (record.kind, record.year, record.channel) == ("annual", YEAR, "post")
    assert (record.goods_description, record.goods_value_minor) == ("A dinner", 3000)


@pytest.mark.parametrize("role", ["viewer", "reviewer"])
def test_only_fundraisers_finance_and_admins_record_a_posted_letter(api, donor, web_as, db, role):
    made = gift(api, donor["id"], "500.00", "2026-03-02")
    staff = web_as(role)
    assert "Record as sent by post" not in text(staff.get(letter_path(made["id"])))
    response = post_refused(staff, letter_path(made["id"]), letter_path(made["id"]) + "/posted",
                            {"posted_to": "2 Main St"})
    assert response.status_code == 403 and sent(db) == []


# --- roles ----------------------------------------------------------------------------------------

def test_roles(client, api, donor, web_as, inbox, db):
    made = gift(api, donor["id"], "500.00", "2026-03-02")
    for path in ("/staff/acknowledgements/", letter_path(made["id"]),
                 "/staff/acknowledgements/refunded", letter_path(made["id"]) + ".pdf"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    for role in ("viewer", "reviewer", "finance"):
        staff = web_as(role)
        assert staff.get("/staff/acknowledgements/").status_code == 200
        page = staff.get(letter_path(made["id"]))
        assert page.status_code == 200 and "Send with the PDF attached" not in text(page)
        assert staff.get(letter_path(made["id"]) + ".pdf").mimetype == "application/pdf"
        refused = post_refused(staff, letter_path(made["id"]), letter_path(made["id"]),
                               {"send_to": "dana@example.org", "action": "send"})
        assert refused.status_code == 403, role
    assert inbox.messages == [] and sent(db) == []
    assert send(web_as("admin"), letter_path(made["id"])).status_code == 302
    assert len(inbox.messages) == 1
    assert ">Acknowledgements</a>" in text(web_as("viewer").get("/staff/acknowledgements/"))


def test_gift_ids_that_do_not_exist_are_404(web_as):
    staff = web_as("viewer")
    assert staff.get(letter_path(999)).status_code == 404
    assert staff.get("/staff/acknowledgements/donors/999/2026").status_code == 404

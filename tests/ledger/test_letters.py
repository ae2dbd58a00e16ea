"""Letters as people read them: dates and amounts in the organisation's locale (Babel), the
goods or services a gift bought and the deductible amount (IRS Publication 1771's
quid-pro-quo statement above $75), the donor's postal address, tribute gifts and their
notification letter (never the amount), and the year-end batch (one PDF for print, an
e-mail per donor). PDFs are read back with pypdf; e-mails go to a local SMTP server."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from app.ledger import acknowledgements as ack
from app.ledger.letter_format import day, locale_of, money
from app.ledger.row_hashes import SEALED, _sealed, canonical, row_hash
from models import Acknowledgement, Gift
from tests.builders import gift, ok, person
from tests.ledger.test_acknowledgements import inbox  # noqa: F401 - the SMTP fixture
from tests.tampering import tamper_apart
from tests.web.ledger_reads import objects, text
from tests.webtools import submit

ON = "2026-03-02"


def pdf_pages(data: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(data))
    return [" ".join((page.extract_text() or "").split()) for page in reader.pages]


def pdf_text(data: bytes) -> str:
    return " ".join(pdf_pages(data))


def donor_at(api, name: str, email: str | None = None, address: str | None = None) -> dict:
    body = {"type": "person", "name": name, "email": email, "postal_address": address}
    return ok(api.post("/donors", {k: v for k, v in body.items() if v is not None}))


# --- the locale ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("locale", "minor", "currency", "written"), [
    ("en_US", 50_000, "USD", "$500.00"),
    ("en_US", 123_456, "USD", "$1,234.56"),
    ("en_GB", 123_456, "GBP", "£1,234.56"),
    ("de_DE", 123_456, "EUR", "1.234,56\xa0€"),  # CLDR: the sign after, a no-break space
    ("en_US", 30_000, "JPY", "¥30,000"),          # no minor unit
    ("en_US", 5, "USD", "$0.05"),
])
def test_amounts_are_written_in_the_locale(locale, minor, currency, written):
    assert money(minor, currency, locale) == written


@pytest.mark.parametrize(("locale", "written"), [
    ("en_US", "December 4, 2026"), ("en_GB", "4 December 2026"), ("de_DE", "4. Dezember 2026"),
])
def test_dates_are_written_in_the_locale(locale, written):
    assert day(date(2026, 12, 4), locale) == written


def test_an_unknown_locale_is_refused_at_start(database_url):
    from app import create_app

    with pytest.raises(ValueError, match="ORG_LOCALE"):
        create_app({"DATABASE_URL": database_url, "TESTING": True, "SECRET_KEY": "x" * 32,
                    "ORG_LOCALE": "xx_NOPE"})
    assert str(locale_of("en-GB")) == "en_GB"


def test_the_letter_follows_org_locale(app, api, web_as):
    app.config.update(ORG_LOCALE="en_GB")
    donor = person(api, "Dana Donor")
    made = gift(api, donor["id"], "1234.56", ON)
    page = text(web_as("viewer").get(f"/staff/acknowledgements/gifts/{made['id']}"))
    assert "of US$1,234.56, received on 2 March 2026." in page
    app.config.update(ORG_LOCALE="de_DE")
    euros = gift(api, donor["id"], "1234.56", ON, currency="EUR", fx_rate="1.1")
    pdf = pdf_text(web_as("viewer").get(f"/staff/acknowledgements/gifts/{euros['id']}.pdf").data)
    assert "1.234,56 €" in pdf and "2. März 2026" in pdf


# --- goods or services, and the deductible amount --------------------------------------------

def test_a_gift_records_its_goods_and_the_api_shows_them(api):
    donor = person(api, "Gala Guest")
    made = gift(api, donor["id"], "500.00", ON,
                goods_or_services={"description": "a gala dinner for two", "value": "120.00"})
    assert made["goods_or_services"] == {"description": "a gala dinner for two", "value": "120.00"}
    assert made["tribute"] is None
    shown = ok(api.get(f"/gifts/{made['id']}"), 200)
    assert shown["goods_or_services"] == {"description": "a gala dinner for two", "value": "120.00"}
    plain = gift(api, donor["id"], "300.00", ON)
    assert plain["goods_or_services"] is None


@pytest.mark.parametrize(("extra", "field", "message"), [
    ({"goods_or_services": {"description": "a mug", "value": "ten"}}, "goods_or_services.value",
     "plain decimal"),
    ({"goods_or_services": {"description": "a mug", "value": "1.234"}},
     "goods_or_services.value", "rounding"),
    ({"goods_or_services": {"description": "a mug", "value": "5.00"}, "kind": "in_kind"},
     "goods_or_services", "only a cash gift"),
    ({"goods_or_services": {"value": "5.00"}}, "goods_or_services.description", ""),
    ({"tribute": {"kind": "memory", "name": "Ann", "notify_address": "1 Road"}},
     "tribute.notify_name", "addressed"),
    ({"tribute": {"kind": "birthday", "name": "Ann"}}, "tribute.kind", ""),
])
def test_bad_goods_or_tributes_are_refused_on_their_field(api, extra, field, message):
    donor = person(api, "Typo Tim")
    response = api.post("/gifts", {"donor_id": donor["id"], "amount": "100.00",
                                   "currency": "USD", "received_on": ON, **extra})
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]
    assert field in errors and message in " ".join(errors[field]), errors


def test_above_75_the_letter_states_the_value_and_the_deductible_amount(app, api, web_as):
    app.config.update(ORG_ADDRESS="1 Evaluation Way\nBerkeley, CA 94704")
    donor = donor_at(api, "Gala Guest", address="12 Oak Street\nSpringfield, IL 62701")
    made = gift(api, donor["id"], "500.00", ON,
                goods_or_services={"description": "a gala dinner for two", "value": "120.00"})
    viewer = web_as("viewer")
    page = text(viewer.get(f"/staff/acknowledgements/gifts/{made['id']}"))
    statement = ("In exchange for this contribution, Independent Evaluation Institute provided "
                 "a gala dinner for two, with a good-faith estimated value of $120.00. The amount "
                 "of your contribution that is deductible for federal income tax purposes is "
                 "limited to the excess of the money contributed over the value of the goods or "
                 "services provided: $380.00.")
    assert statement in page
    assert "No goods or services" not in page
    # The gift's own goods are stated; the page offers no fields to type others.
    assert 'name="goods_description"' not in page
    pdf = viewer.get(f"/staff/acknowledgements/gifts/{made['id']}.pdf").data
    words = pdf_text(pdf)
    assert statement in words
    assert "Gala Guest 12 Oak Street Springfield, IL 62701 Dear Gala Guest," in words
    assert "March 2, 2026" in words and "$500.00" in words


def test_at_or_below_75_the_goods_are_described_without_the_deductible_sentence(api):
    organisation = ack.Organisation("Org")
    goods = ack.Goods("a tote bag", 1_000, "USD")
    small = ack.LetterGift(1, date(2026, 5, 1), "cash", 7_500, "USD", None, goods,
                           quid_pro_quo=False)
    large = ack.LetterGift(2, date(2026, 6, 1), "cash", 7_501, "USD", None, goods,
                           quid_pro_quo=True)
    letter = ack.Letter("annual", organisation, date(2027, 1, 5), 9, "Dana", None,
                        (small, large), year=2026)
    statement = letter.goods_statement
    assert ("In exchange for your contribution of May 1, 2026, Org provided a tote bag, with a "
            "good-faith estimated value of $10.00. In exchange") in statement
    assert statement.count("deductible") == 1
    assert "limited to the excess of the money contributed over the value of the goods or " \
           "services provided: $65.01." in statement
    text_ = ack.letter_text(letter)
    assert "May 1, 2026: $75.00 (deductible: $65.00)" in text_
    assert "Of which deductible: $130.01." in text_


def test_the_75_threshold_is_judged_on_the_gift_recorded(api, web_as, db):
    """The deciding flag comes from the ledger: 75.00 USD is not more than 75."""
    donor = person(api, "Edge Case")
    at = gift(api, donor["id"], "75.00", ON, goods_or_services={"description": "a mug",
                                                                "value": "5.00"})
    above = gift(api, donor["id"], "75.01", ON, goods_or_services={"description": "a mug",
                                                                   "value": "5.00"})
    letter = ack.annual_letter(db, donor["id"], 2026, ack.Organisation("Org"), date(2027, 1, 5))
    flags = {g.gift_id: g.quid_pro_quo for g in letter.gifts}
    assert flags == {at["id"]: False, above["id"]: True}


def test_without_goods_the_letter_says_none_were_provided(api, web_as):
    donor = person(api, "Plain Giver")
    made = gift(api, donor["id"], "400.00", ON)
    pdf = web_as("viewer").get(f"/staff/acknowledgements/gifts/{made['id']}.pdf").data
    assert "No goods or services were provided in exchange for this contribution." in pdf_text(pdf)


def test_the_sent_letter_records_the_gifts_goods(app, api, web_as, db, inbox):  # noqa: F811
    donor = person(api, "Gala Guest", "gala@example.org")
    made = gift(api, donor["id"], "500.00", ON,
                goods_or_services={"description": "a gala dinner", "value": "120.00"})
    fundraiser = web_as("fundraiser")
    path = f"/staff/acknowledgements/gifts/{made['id']}"
    response = submit(fundraiser, path, {"send_to": "gala@example.org", "action": "send"})
    assert response.status_code == 302, text(response)
    [(_, _, message)] = inbox.messages
    body = message.get_body(("plain",)).get_content()
    assert "$380.00" in body and "$120.00" in body
    [record] = objects(db, select(Acknowledgement))
    content = json.loads(record.content)
    assert content["gifts"][0]["deductible"] == "380.00"
    assert content["gifts"][0]["goods_or_services"]["estimated_value"] == "120.00"
    assert (record.goods_description, record.goods_value_minor) == ("a gala dinner", 12_000)
    # The body the donor reads carries no internal hash.
    assert record.content_hash not in body


def test_the_goods_are_sealed_with_the_gift(api, database_url, db):
    donor = person(api, "Gala Guest")
    made = gift(api, donor["id"], "500.00", ON,
                goods_or_services={"description": "a gala dinner", "value": "120.00"})
    plain = gift(api, donor["id"], "300.00", ON)
    report = ok(api.get("/audit/verify"), 200)
    assert report["ok"] is True, report["row_findings"]
    tamper_apart(database_url,
                 f"UPDATE gift SET goods_value_minor = 500 WHERE id = {made['id']}",
                 f"UPDATE gift SET goods_description = 'x', goods_value_minor = 0 "
                 f"WHERE id = {plain['id']}")
    report = ok(api.get("/audit/verify"), 200)
    found = {(f["table"], f["id"], f["problem"]) for f in report["row_findings"]}
    assert found == {("gift", made["id"], "content differs"),
                     ("gift", plain["id"], "content differs")}


def test_a_gift_without_goods_hashes_as_before_the_columns_existed(api, db):
    """Gifts sealed before migration 0031 keep their hashes: the later columns are left out
    of the canonical form while they are empty, and count once set."""
    donor = person(api, "Old Timer")
    db.rollback()  # see what the requests committed
    first = gift(api, donor["id"], "300.00", ON)
    db.rollback()
    plain = db.get(Gift, first["id"]).__dict__
    made = gift(api, donor["id"], "300.00", ON, goods_or_services={"description": "a mug",
                                                                     "value": "0"})
    db.rollback()
    with_goods = db.get(Gift, made["id"]).__dict__
    now = SEALED["gift"]
    before = _sealed(Gift, tuple(c for c in now.columns if c not in now.later))
    assert row_hash(now, plain) == row_hash(before, plain)
    assert canonical(now, plain) == canonical(before, plain)
    assert row_hash(now, with_goods) != row_hash(before, with_goods)
    assert canonical(now, with_goods).endswith(
        ',{"goods_description":"a mug","goods_value_minor":0}]')


# --- tributes ------------------------------------------------------------------------------------

TRIBUTE = {"kind": "memory", "name": "Grace Hopper", "notify_name": "Mary Hopper",
           "notify_address": "7 Harbour Road\nArlington, VA 22201"}


def test_a_tribute_is_recorded_and_shown(api, web_as):
    donor = person(api, "Tess Tribute")
    made = gift(api, donor["id"], "500.00", ON, tribute=TRIBUTE)
    expected = {"kind": "memory", "name": "Grace Hopper", "notify_name": "Mary Hopper",
                "notify_address": "7 Harbour Road\nArlington, VA 22201"}
    assert made["tribute"] == expected
    assert ok(api.get(f"/gifts/{made['id']}"), 200)["tribute"] == expected
    page = text(web_as("viewer").get(f"/staff/gifts/{made['id']}"))
    assert "In memory of Grace Hopper" in page and "Notify Mary Hopper" in page
    assert f"/staff/acknowledgements/gifts/{made['id']}/tribute.pdf" in page


def test_the_notification_letter_never_states_the_amount(app, api, web_as):
    app.config.update(ORG_ADDRESS="1 Evaluation Way\nBerkeley, CA 94704")
    donor = person(api, "Tess Tribute")
    made = gift(api, donor["id"], "1234.56", ON, tribute=TRIBUTE,
                goods_or_services={"description": "a book", "value": "20.00"})
    response = web_as("viewer").get(f"/staff/acknowledgements/gifts/{made['id']}/tribute.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    words = pdf_text(response.data)
    assert "Mary Hopper 7 Harbour Road Arlington, VA 22201 Dear Mary Hopper," in words
    assert ("Tess Tribute has made a gift to Independent Evaluation Institute in memory of "
            "Grace Hopper") in words
    for amount in ("1,234.56", "1234.56", "1.234,56", "$", "20.00", "book"):
        assert amount not in words, amount


def test_an_anonymous_donor_is_not_named_to_the_tribute_recipient(api, web_as):
    donor = ok(api.post("/donors", {"type": "person", "name": "Quiet Quinn",
                                    "anonymous": True}))
    made = gift(api, donor["id"], "50.00", ON, tribute={**TRIBUTE, "kind": "honour"})
    words = pdf_text(web_as("viewer").get(
        f"/staff/acknowledgements/gifts/{made['id']}/tribute.pdf").data)
    assert "Quiet Quinn" not in words
    assert "A donor who wishes to remain anonymous has made a gift" in words
    assert "in honour of Grace Hopper" in words


def test_no_notification_without_someone_to_notify(api, web_as):
    donor = person(api, "Tess Tribute")
    made = gift(api, donor["id"], "50.00", ON, tribute={"kind": "honour", "name": "Ada"})
    assert web_as("viewer").get(
        f"/staff/acknowledgements/gifts/{made['id']}/tribute.pdf").status_code == 404


def test_the_tributes_names_are_sealed(api, database_url):
    donor = person(api, "Tess Tribute")
    made = gift(api, donor["id"], "50.00", ON, tribute=TRIBUTE)
    assert ok(api.get("/audit/verify"), 200)["ok"] is True
    tamper_apart(database_url, "UPDATE gift_tribute SET honoree_name = 'Someone Else' "
                               f"WHERE gift_id = {made['id']}")
    report = ok(api.get("/audit/verify"), 200)
    assert {(f["table"], f["problem"]) for f in report["row_findings"]} == {
        ("gift_tribute.names", "content differs")}


# --- the year-end batch --------------------------------------------------------------------------

@pytest.fixture
def year_2026(api):
    """Three donors with gifts in 2026 (one with goods, one in EUR), one in 2025 only."""
    ada = donor_at(api, "Ada Able", "ada@example.org", "1 First Street\nBoston, MA 02101")
    gift(api, ada["id"], "100.00", "2026-01-15")
    gift(api, ada["id"], "500.00", "2026-06-01",
         goods_or_services={"description": "a gala dinner", "value": "120.00"})
    ben = donor_at(api, "Ben Baker", None, "2 Second Street\nAustin, TX 73301")
    gift(api, ben["id"], "40.00", "2026-02-02", currency="EUR", fx_rate="1.1")
    cal = donor_at(api, "Cal Cole", "cal@example.org")
    gift(api, cal["id"], "60.00", "2026-11-30")
    old = person(api, "Old Only")
    gift(api, old["id"], "999.00", "2025-12-31")
    return {"ada": ada, "ben": ben, "cal": cal, "old": old}


def test_year_end_letters_cover_every_donor_of_the_year_with_progress(db, year_2026):
    seen = []
    letters = list(ack.year_end_letters(db, 2026, ack.Organisation("Org"), date(2027, 1, 10),
                                        progress=lambda done, total: seen.append((done, total)),
                                        chunk=2))
    assert [letter.donor_name for letter in letters] == ["Ada Able", "Ben Baker", "Cal Cole"]
    assert seen == [(1, 3), (2, 3), (3, 3)]
    ada = letters[0]
    assert ada.totals == [("USD", 60_000)] and ada.deductible_totals == [("USD", 48_000)]


def test_the_year_end_pdf_puts_each_donor_on_sheets_of_their_own(app, year_2026, web_as):
    finance = web_as("finance")
    response = submit(finance, "/staff/acknowledgements/year-end", {"year": "2026",
                                                                    "action": "pdf"})
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    pages = pdf_pages(response.data)
    # Each donor starts on an odd page (duplex printing: never two donors on one sheet).
    starts = {i + 1: page for i, page in enumerate(pages) if "Giving statement 2026" in page}
    assert sorted(starts) == [1, 3, 5], len(pages)
    ada, ben, cal = (starts[n] for n in (1, 3, 5))
    assert "Ada Able 1 First Street Boston, MA 02101 Dear Ada Able," in ada
    assert "January 15, 2026: $100.00" in ada
    assert "June 1, 2026: $500.00 (deductible: $380.00)" in ada
    assert "Total cash given in 2026: $600.00." in ada and "Of which deductible: $480.00." in ada
    assert "February 2, 2026: €40.00" in ben and "Ben Baker 2 Second Street" in ben
    assert "No goods or services were provided in exchange for these contributions." in cal
    assert "Old Only" not in " ".join(pages)


def test_the_year_end_page_is_for_finance(web_as):
    assert web_as("fundraiser").get("/staff/acknowledgements/year-end").status_code == 403
    page = web_as("finance").get("/staff/acknowledgements/year-end")
    assert page.status_code == 200 and "Year-end giving statements" in text(page)


def test_the_year_end_emails_each_donor_once(app, year_2026, web_as, db, inbox):  # noqa: F811
    finance = web_as("finance")
    response = submit(finance, "/staff/acknowledgements/year-end", {"year": "2026",
                                                                    "action": "email"})
    assert response.status_code == 200, text(response)
    page = text(response)
    assert "Sent: 2" in page and "No e-mail address (post these): 1" in page
    to = sorted(recipients[0] for _, recipients, _ in inbox.messages)
    assert to == ["ada@example.org", "cal@example.org"]
    ada = next(m for _, r, m in inbox.messages if r == ["ada@example.org"])
    assert ada["Subject"] == "Independent Evaluation Institute: your 2026 giving statement"
    assert "June 1, 2026: $500.00 (deductible: $380.00)" in ada.get_body(("plain",)).get_content()
    [attachment] = list(ada.iter_attachments())
    assert "Total cash given in 2026: $600.00." in pdf_text(attachment.get_content())
    records = objects(db, select(Acknowledgement).order_by(Acknowledgement.id))
    assert {(r.kind, r.donor_id, r.year) for r in records} == {
        ("annual", year_2026["ada"]["id"], 2026), ("annual", year_2026["cal"]["id"], 2026)}
    again = text(submit(finance, "/staff/acknowledgements/year-end", {"year": "2026",
                                                                      "action": "email"}))
    assert "Sent: 0" in again and "Already sent before: 2" in again
    assert len(inbox.messages) == 2


def test_the_cli_writes_the_year_end_pdf(app, year_2026, tmp_path):
    out = tmp_path / "statements.pdf"
    result = app.test_cli_runner().invoke(
        args=["year-end-statements", "--year", "2026", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3/3 donors" in result.output
    pages = pdf_pages(out.read_bytes())
    assert sum("Giving statement 2026" in page for page in pages) == 3
    refused = app.test_cli_runner().invoke(
        args=["year-end-statements", "--year", "26", "--out", str(out)])
    assert refused.exit_code != 0


# --- the batched intake writes the same facts ----------------------------------------------------

def test_the_intake_writes_goods_and_tributes_sealed_as_the_door_does(db, policy):
    from app.db.locking import ledger_batch
    from app.ledger.audit import Actor
    from app.ledger.intake import GiftIntake
    from app.ledger.parties import create_donor
    from app.ledger.row_verify import verify_rows
    from app.ledger.tributes import tribute_of
    from models.schemas import DonorCreate, GiftCreate

    actor = Actor("test", role="admin")
    donor = create_donor(db, DonorCreate(type="person", name="Batch Betty"), actor)
    data = GiftCreate.model_validate({
        "donor_id": donor.id, "amount": "500.00", "currency": "USD", "received_on": ON,
        "goods_or_services": {"description": "a dinner", "value": "100.00"},
        "tribute": {"kind": "honour", "name": "Ada Lovelace", "notify_name": "Byron"}})
    plain = GiftCreate.model_validate({"donor_id": donor.id, "amount": "20.00",
                                       "currency": "USD", "received_on": ON})
    with ledger_batch(db), GiftIntake(db, actor, policy, "USD") as intake:
        first = intake.record(data, tag="1")
        second = intake.record(plain, tag="2")
    made = db.get(Gift, first.gift.id)
    assert (made.goods_description, made.goods_value_minor) == ("a dinner", 10_000)
    assert db.get(Gift, second.gift.id).goods_description is None
    tribute = tribute_of(db, made.id)
    assert (tribute.kind, tribute.honoree_name, tribute.notify_name) == (
        "honour", "Ada Lovelace", "Byron")
    assert tribute_of(db, second.gift.id) is None
    report = verify_rows(db)
    assert report.ok, [str(f) for f in report.findings]

"""CSV import: a dry run that lists every bad row, then an all-or-nothing import through the policy."""

from __future__ import annotations

import html as htmllib
import io
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.ledger.intake import GiftIntake
from models import (
    Affiliation,
    AuditEntry,
    Decision,
    Donor,
    DonorExternalId,
    FundingDay,
    Gift,
)
from tests.builders import organization
from tests.jobtools import finished_job_page
from tests.webtools import csrf_token, session_token

GIFTS_HEADER = ("external_ref,donor_external_id,amount,currency,received_on,kind,purpose,method,"
                "fx_rate,description")
DONORS_HEADER = "external_id,type,name,email,category,organization"
AFFILIATIONS_HEADER = ("donor_external_id,organization,kind,title,senior_decision_maker,"
                       "start_date,end_date")
# Imports run as background jobs: a real consumer of the real queue runs them.
pytestmark = pytest.mark.usefixtures("job_worker")

ERROR_ROW = re.compile(r'<tr><td>([^<]+)</td><td class="num">(\d+)</td>\s*<td>(.*?)</td></tr>', re.S)


def csv_text(header: str, *rows: str) -> str:
    return "\n".join([header, *rows]) + "\n"


def upload(client, action: str = "check", **files):
    """Submit the import page's form. An import runs as a background job (the job_worker
    fixture runs it): this returns the job's page once it has ended, with `.job` its JSON."""
    page = client.get("/staff/import/")
    assert page.status_code == 200
    data = {"csrf_token": csrf_token(page.get_data(as_text=True)), "action": action}
    for kind, content in files.items():
        raw = content if isinstance(content, bytes) else content.encode()
        data[kind] = (io.BytesIO(raw), f"{kind}.csv")
    response = client.post("/staff/import/", data=data, content_type="multipart/form-data")
    if action == "import" and response.status_code == 303:
        return finished_job_page(client, response)
    return response


def errors_of(response) -> dict[tuple[str, int], str]:
    return {(f, int(line)): htmllib.unescape(reasons)
            for f, line, reasons in ERROR_ROW.findall(response.get_data(as_text=True))}


def counts(db) -> dict[str, int]:
    result = {model.__name__: db.execute(select(func.count()).select_from(model)).scalar_one()
              for model in (Donor, DonorExternalId, Affiliation, Gift, Decision, AuditEntry,
                            FundingDay)}
    db.rollback()
    return result


# --- access ---------------------------------------------------------------------------------

def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/staff/import/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("role", ["viewer", "reviewer", "finance"])
def test_roles_without_gifts_write_may_not_import(web_as, role):
    client = web_as(role)
    assert client.get("/staff/import/").status_code == 403
    token = session_token(client.get("/staff/").get_data(as_text=True))
    response = client.post("/staff/import/", content_type="multipart/form-data", data={
        "csrf_token": token, "action": "import",
        "gifts": (io.BytesIO(csv_text(GIFTS_HEADER).encode()), "gifts.csv")})
    assert response.status_code == 403


def test_the_page_documents_the_columns(web_as):
    html = web_as("fundraiser").get("/staff/import/").get_data(as_text=True)
    assert "external_ref,donor_external_id,amount,currency,received_on" in html


# --- the dry run ----------------------------------------------------------------------------

def test_dry_run_lists_every_bad_row_with_its_line_and_writes_nothing(api, web_as, db):
    fundraiser = web_as("fundraiser")
    before = counts(db)
    donors = csv_text(
        DONORS_HEADER,
        "D1,person,Dana Donor,dana@example.org,,",            # 2 good
        "D2,robot,Robo,,,",                                    # 3 bad type
        "D1,person,Dana Again,,,",                             # 4 repeats D1
        "D3,organization,Acme,,company,Nowhere Inc",           # 5 unknown organisation
        "D4,person,Pat,not-an-email,,",                        # 6 bad email
        'D5,person,"Multi',                                    # 7-8 good, two lines
        'Line Name",,,',
        "D6,person,,,,",                                       # 9 no name
    )
    affiliations = csv_text(
        AFFILIATIONS_HEADER,
        "D1,Nowhere Inc,employee,,false,2020-01-01,",          # 2 unknown organisation
        "D1,,employee,,maybe,2020-01-01,",                     # 3 no org, bad flag
    )
    gifts = csv_text(
        GIFTS_HEADER,
        "G1,D1,100.00,USD,2025-01-05,,,,,ok",                  # 2 good
        "G2,D1,12.345,USD,2025-01-05,,,,,",                    # 3 too many decimals
        "G3,NOPE,10.00,USD,2025-01-05,,,,,",                   # 4 unknown donor
        "G1,D1,10.00,USD,2025-01-06,,,,,",                     # 5 repeats G1
        "G4,D1,10.00,EUR,2025-01-06,,,,,",                     # 6 no fx rate
        "G5,D1,10.00,USD,2999-01-01,,,,,",                     # 7 future
        "G6,D1,10.00,USD,05/01/2025,,,,,",                     # 8 date format
        "G7,D2,10.00,USD,2025-01-05,,,,,",                     # 9 D2 is a bad row itself
        ",D1,10.00,USD,2025-01-05,,,,,",                       # 10 no external_ref
        "G8,D1,10.00,USD",                                     # 11 too few fields
        "G9,D1,10.00,USD,2025-01-05,cash,donation,,,",         # 12 bad purpose
        "",                                                    # 13 blank: ignored
        "G10,D5,10.00,USD,2025-01-05,,,,,",                    # 14 good (D5 from this upload)
    )
    response = upload(fundraiser, donors=donors, affiliations=affiliations, gifts=gifts)
    assert response.status_code == 422
    found = errors_of(response)
    assert sorted(found) == sorted([
        ("donors.csv", 3), ("donors.csv", 4), ("donors.csv", 5), ("donors.csv", 6),
        ("donors.csv", 9),
        ("affiliations.csv", 2), ("affiliations.csv", 3),
        ("gifts.csv", 3), ("gifts.csv", 4), ("gifts.csv", 5), ("gifts.csv", 6), ("gifts.csv", 7),
        ("gifts.csv", 8), ("gifts.csv", 9), ("gifts.csv", 10), ("gifts.csv", 11), ("gifts.csv", 12),
    ])
    assert "type: Input should be 'person' or 'organization'" in found[("donors.csv", 3)]
    assert "external_id 'D1' repeats line 2" in found[("donors.csv", 4)]
    assert "no organisation named 'Nowhere Inc'" in found[("donors.csv", 5)]
    assert "email:" in found[("donors.csv", 6)]
    assert "name:" in found[("donors.csv", 9)]
    assert "no organisation named 'Nowhere Inc'" in found[("affiliations.csv", 2)]
    assert "organization: required" in found[("affiliations.csv", 3)]
    assert "senior_decision_maker: must be true or false" in found[("affiliations.csv", 3)]
    assert "USD has 2 decimal places" in found[("gifts.csv", 3)]
    assert "no donor 'NOPE'" in found[("gifts.csv", 4)]
    assert "external_ref 'G1' repeats line 2" in found[("gifts.csv", 5)]
    assert "fx_rate: required when the currency is not USD" in found[("gifts.csv", 6)]
    assert "in the future" in found[("gifts.csv", 7)]
    assert "received_on: must be a date in the form YYYY-MM-DD" in found[("gifts.csv", 8)]
    assert "no donor 'D2'" in found[("gifts.csv", 9)]
    assert "external_ref: required" in found[("gifts.csv", 10)]
    assert "expected 10 fields, found 4" in found[("gifts.csv", 11)]
    assert "purpose:" in found[("gifts.csv", 12)]
    assert "17 bad rows: nothing was imported" in response.get_data(as_text=True)
    assert counts(db) == before

    # "Import" with the same files refuses just the same and writes nothing either.
    again = upload(fundraiser, "import", donors=donors, affiliations=affiliations, gifts=gifts)
    assert again.job["status"] == "failed" and errors_of(again) == found
    assert counts(db) == before


def test_a_gift_above_the_largest_recorded_is_a_row_error(web_as, db):
    """MAX_GIFT_MINOR, in the reporting currency: found by the check, before any import."""
    fundraiser = web_as("fundraiser")
    before = counts(db)
    donors = csv_text(DONORS_HEADER, "D1,person,Ada Donor,,,")
    gifts = csv_text(
        GIFTS_HEADER,
        "G1,D1,100000000.00,USD,2025-01-05,,,,,",               # 2 the maximum itself: fine
        "G2,D1,100000000.01,USD,2025-01-05,,,,,",               # 3 one cent more
        "G3,D1,90000000.00,EUR,2025-01-05,,,,1.2,",             # 4 more once converted
    )
    response = upload(fundraiser, donors=donors, gifts=gifts)
    assert response.status_code == 422
    found = errors_of(response)
    assert sorted(found) == [("gifts.csv", 3), ("gifts.csv", 4)]
    assert ("amount: 100,000,000.01 USD is more than the largest gift recorded here, "
            "100,000,000.00 USD") in found[("gifts.csv", 3)]
    assert "(108,000,000.00 USD at the rate given)" in found[("gifts.csv", 4)]
    assert counts(db) == before


def test_a_clean_dry_run_says_what_would_be_imported_and_writes_nothing(web_as, db):
    fundraiser = web_as("fundraiser")
    before = counts(db)
    response = upload(fundraiser,
                      donors=csv_text(DONORS_HEADER, "D1,person,Dana,,,", "D2,person,Eli,,,"),
                      gifts=csv_text(GIFTS_HEADER, "G1,D1,10.00,USD,2025-01-05,,,,,"))
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Dry run: every row is good" in text and "2 donors, 1 gifts" in text
    assert counts(db) == before


@pytest.mark.parametrize(("content", "message"), [
    ("external_ref,donor,amount\nG1,D1,1\n", "unknown column(s): donor"),
    ("external_ref,donor_external_id,amount,currency\n", "missing required column(s): received_on"),
    ("external_ref,external_ref,donor_external_id,amount,currency,received_on\n",
     "column(s) named twice: external_ref"),
    ("", "the file is empty"),
    (b"external_ref,donor_external_id,amount,currency,received_on\nG1,Jos\xe9,1.00,USD,2025-01-01\n",
     "not UTF-8"),
])
def test_unusable_files_are_reported_once(web_as, content, message):
    response = upload(web_as("fundraiser"), gifts=content)
    assert response.status_code == 422
    found = errors_of(response)
    assert len(found) == 1
    assert message in next(iter(found.values()))


def test_a_byte_order_mark_and_upper_case_headers_are_fine(web_as):
    content = "\ufeffEXTERNAL_ID,Type,Name\r\nD1,Person,Dana\r\n".encode()
    assert upload(web_as("fundraiser"), donors=content).status_code == 200


# --- the import -----------------------------------------------------------------------------

def _lab_world(api) -> dict:
    return {"lab": organization(api, "Frontier Lab", covered_lab=True),
            "plain": organization(api, "Plain Corp")}


def _gifts_by_ref(db) -> dict[str, Gift]:
    rows = db.execute(select(Gift)).scalars().all()
    db.rollback()
    return {g.external_ref: g for g in rows}


def test_gifts_are_imported_in_date_order_through_the_policy(api, web_as, db):
    _lab_world(api)
    fundraiser = web_as("fundraiser")
    donors = csv_text(DONORS_HEADER,
                      "D1,person,Dana Donor,dana@example.org,,",
                      "E1,person,Lee Employee,,,",
                      "L1,organization,Frontier Lab (corporate),,company,frontier lab")
    affiliations = csv_text(AFFILIATIONS_HEADER,
                            "E1,Frontier Lab,employee,Research engineer,no,2015-01-01,")
    gifts = csv_text(
        GIFTS_HEADER,
        # In file order the employee's 100 would come first, at 100% of funding, and be
        # rejected. In date order Dana's 1000 comes first and the 100 is 9%: accepted.
        "G-E1,E1,100.00,USD,2025-03-01,,,,,",
        "G-D1,D1,1000.00,USD,2025-01-01,,,check,,Historical gift",
        # 2100 of 3100 is 68%: over the 50% cap.
        "G-E2,E1,2000.00,USD,2025-04-01,,,,,",
        "G-L1,L1,500.00,USD,2025-05-01,,,,,",
    )
    response = upload(fundraiser, "import", donors=donors, affiliations=affiliations, gifts=gifts)
    assert response.status_code == 200, errors_of(response)
    text = response.get_data(as_text=True)
    assert "3 donors, 1 affiliations and 4 gifts" in text
    assert re.search(r"2 accepted,\s+1 held for review,\s+1 rejected", text)

    by_ref = _gifts_by_ref(db)
    assert {ref: g.status for ref, g in by_ref.items()} == {
        "G-D1": "accepted", "G-E1": "accepted", "G-E2": "rejected", "G-L1": "held"}
    # Recorded in date order, not file order.
    assert sorted(by_ref, key=lambda ref: by_ref[ref].id) == ["G-D1", "G-E1", "G-E2", "G-L1"]
    assert by_ref["G-D1"].method == "check" and by_ref["G-D1"].description == "Historical gift"
    decision = db.execute(select(Decision).where(Decision.gift_id == by_ref["G-E2"].id)).scalar_one()
    fired = {r["rule"] for r in decision.reasons if r["fired"]}
    assert fired == {"lab_employee_cap"} and decision.policy_version == "2026.4"
    assert "G-E2" in text and "G-L1" in text  # listed as not accepted, with their lines

    links = dict(db.execute(select(DonorExternalId.external_id, Donor.name)
                            .join(Donor, Donor.id == DonorExternalId.donor_id)).all())
    assert links == {"D1": "Dana Donor", "E1": "Lee Employee", "L1": "Frontier Lab (corporate)"}
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "import.completed")).scalar_one()
    assert entry.actor == "web:web-fundraiser@example.org"
    assert entry.data == {
        "files": {"donors": "donors.csv", "affiliations": "affiliations.csv", "gifts": "gifts.csv"},
        "donors": 3, "affiliations": 1, "gifts": 4,
        "outcomes": {"accept": 2, "reject": 1, "hold": 1}, "rescreened_gifts": 0,
        "job_id": response.job["id"],
    }
    # Every gift also has its own gift.recorded entry, like any other gift.
    recorded = db.execute(select(func.count()).where(AuditEntry.action == "gift.recorded")).scalar_one()
    assert recorded == 4


def test_a_later_file_names_donors_from_an_earlier_import(web_as, db):
    fundraiser = web_as("fundraiser")
    assert upload(fundraiser, "import", donors=csv_text(DONORS_HEADER, "D1,person,Dana,,,")
                  ).status_code == 200
    response = upload(fundraiser, "import",
                      gifts=csv_text(GIFTS_HEADER, "G1,D1,25.00,USD,2025-02-02,,,,,"))
    assert response.status_code == 200
    assert _gifts_by_ref(db)["G1"].status == "accepted"


def test_a_file_whose_last_row_is_bad_imports_nothing(web_as, db):
    fundraiser = web_as("fundraiser")
    before = counts(db)
    rows = [f"G{i},D1,10.00,USD,2025-01-{i:02d},,,,," for i in range(1, 21)]
    rows.append("G21,D1,-5,USD,2025-01-21,,,,,")
    response = upload(fundraiser, "import",
                      donors=csv_text(DONORS_HEADER, "D1,person,Dana,,,"),
                      gifts=csv_text(GIFTS_HEADER, *rows))
    assert response.job["status"] == "failed"
    assert response.job["error"] == "1 bad row: nothing was imported"
    assert list(errors_of(response)) == [("gifts.csv", 22)]
    assert counts(db) == before


real_record = GiftIntake.record


def test_a_row_the_ledger_refuses_mid_import_rolls_back_everything(web_as, db, monkeypatch):
    """The checks pass, then the ledger refuses the last gift: every row before it goes too."""

    def refuse_the_last(intake, data, **kwargs):
        if data.external_ref == "G30":
            data = data.model_copy(update={"donor_id": 987654})  # a donor that does not exist
        return real_record(intake, data, **kwargs)

    monkeypatch.setattr(GiftIntake, "record", refuse_the_last)
    fundraiser = web_as("fundraiser")
    before = counts(db)
    rows = [f"G{i},D{i % 3},10.00,USD,2025-02-{i % 28 + 1:02d},,,,," for i in range(1, 30)]
    rows.append("G30,D1,10.00,USD,2025-03-31,,,,,")  # the latest date: recorded last
    response = upload(fundraiser, "import",
                      donors=csv_text(DONORS_HEADER, "D0,person,Ann,,,", "D1,person,Bo,,,",
                                      "D2,person,Cy,,,"),
                      affiliations=csv_text(AFFILIATIONS_HEADER),
                      gifts=csv_text(GIFTS_HEADER, *rows))
    assert response.job["status"] == "failed"
    text = htmllib.unescape(response.get_data(as_text=True))
    assert "Nothing was imported" in text
    assert "gifts.csv line 31" in text and "no such donor" in text
    assert counts(db) == before  # no donors, no gifts, no decisions, no funding, no audit


def test_importing_the_same_files_again_is_refused_as_duplicates(web_as, db):
    fundraiser = web_as("fundraiser")
    donors = csv_text(DONORS_HEADER, "D1,person,Dana,,,", "D2,person,Eli,,,")
    gifts = csv_text(GIFTS_HEADER, "G1,D1,10.00,USD,2025-01-05,,,,,",
                     "G2,D2,20.00,USD,2025-01-06,,,,,")
    assert upload(fundraiser, "import", donors=donors, gifts=gifts).status_code == 200
    before = counts(db)

    dry = upload(fundraiser, donors=donors, gifts=gifts)
    assert dry.status_code == 422
    found = errors_of(dry)
    assert sorted(found) == [("donors.csv", 2), ("donors.csv", 3), ("gifts.csv", 2), ("gifts.csv", 3)]
    assert "external_id 'D1' was imported before" in found[("donors.csv", 2)]
    assert "external_ref 'G1' is already recorded" in found[("gifts.csv", 2)]
    assert "duplicate" in found[("gifts.csv", 3)]

    # The gifts file alone (its donors known from the first import) is refused the same way.
    again = upload(fundraiser, "import", gifts=gifts)
    assert again.job["status"] == "failed" and len(errors_of(again)) == 2
    assert counts(db) == before


def test_an_affiliation_recorded_already_is_refused(api, web_as):
    _lab_world(api)
    fundraiser = web_as("fundraiser")
    donors = csv_text(DONORS_HEADER, "E1,person,Lee,,,")
    affiliation = csv_text(AFFILIATIONS_HEADER, "E1,Frontier Lab,employee,,true,2020-01-01,")
    assert upload(fundraiser, "import", donors=donors, affiliations=affiliation).status_code == 200
    again = upload(fundraiser, affiliations=affiliation)
    assert again.status_code == 422
    assert "already recorded" in next(iter(errors_of(again).values()))


def test_a_few_hundred_rows(web_as, db):
    start = date(2024, 1, 1)
    donors = [f"D{i},person,Donor {i},d{i}@example.org,," for i in range(40)]
    gifts = [f"G{i:04d},D{i % 40},{10 + i}.50,USD,{start + timedelta(days=(i * 7919) % 300)},,,,,"
             for i in range(400)]
    response = upload(web_as("fundraiser"), "import", donors=csv_text(DONORS_HEADER, *donors),
                      gifts=csv_text(GIFTS_HEADER, *gifts))
    assert response.status_code == 200
    assert "40 donors, 0 affiliations and 400 gifts" in response.get_data(as_text=True)
    rows = db.execute(select(Gift.received_on, Gift.status).order_by(Gift.id)).all()
    assert len(rows) == 400 and {status for _, status in rows} == {"accepted"}
    assert [day for day, _ in rows] == sorted(day for day, _ in rows)
    total = db.execute(select(func.sum(FundingDay.total_minor))).scalar_one()
    assert total == sum((10 + i) * 100 + 50 for i in range(400))


def test_donors_file_needs_donors_write(app, web_as):
    """Every role with gifts.write has donors.write today; the check is there for when not."""
    from app.auth import roles

    client = web_as("fundraiser")
    original = roles.PERMISSIONS["donors.write"]
    roles.PERMISSIONS["donors.write"] = frozenset({"admin"})
    try:
        response = upload(client, donors=csv_text(DONORS_HEADER, "D1,person,Dana,,,"))
    finally:
        roles.PERMISSIONS["donors.write"] = original
    assert response.status_code == 403

"""Generated gift rows through the real CSV import (the staff import page), on SQLite and PostgreSQL.

hypothesis writes a gifts.csv (and a donors.csv naming the donors it uses): amounts valid,
zero, negative, with too many decimals, malformed or too large to store; currencies valid,
lower-case, unknown, metals, or foreign without an exchange rate; dates valid, impossible,
in another format or in the future; donor references known or missing; external refs and
descriptions with spreadsheet-formula prefixes (= + - @), unicode, embedded quotes and
line breaks; now and then an external_ref repeated from an earlier row.

Every generated value is tagged good or bad when it is drawn, so the test knows which
rows must be refused. The import must then either record every row exactly as given
(amounts in minor units, the currency, the date, the donor, the text) with one decision and
one audit entry each, or refuse the file, naming exactly the bad rows by line, and write
nothing at all (no donor, gift, decision, funding total or audit entry). A number too
large to store must be refused too (422), with nothing written. Never a 500.

Small for CI: 25 examples per backend, no deadline, no example database.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import count

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.config import DEFAULTS
from models import Attribution, AuditEntry, Decision, Donor, DonorExternalId, FundingDay, Gift
from policies import load_policy
from tests.web.test_import import errors_of, upload

GIFT_COLUMNS = ["external_ref", "donor_external_id", "amount", "currency", "received_on",
                "description", "fx_rate"]
FORMULA_TEXT = ["=1+1", "+SUM(A1:A9)", "-2+3", "@SUM(1)", '=HYPERLINK("http://example.com","x")',
                "=cmd|' /C calc'!A0", 'say "hi"', '"quoted"', "two\nlines", "crlf\r\nline",
                "ünïcödé ✓ 漢字 🙂", "tab\tinside", "  padded  ", ""]
REF_PREFIXES = ["", "=", "+", "-", "@", "=SUM(", 'q"uote', "line\nbreak-", "é✓-", "  "]

GOOD, BAD, HUGE = "good", "bad", "huge"
#: Well-formed amounts too large for the database's 64-bit integers (2**63 minor units and up).
HUGE_AMOUNTS = ["99999999999999999999.99", "92233720368547758.08", str(10**30)]
EUR_RATE = Decimal("1.1")
#: The largest good amount: within MAX_GIFT_MINOR in USD, also once converted from EUR.
LARGEST_GOOD = int(DEFAULTS["MAX_GIFT_MINOR"] / EUR_RATE)
#: Ordinary donors' gifts from this size on are held for a reviewer (rule large_gift).
LARGE_GIFT = load_policy().settings["large_gift"]["threshold_minor"]
EXAMPLES = count()


@dataclass
class Row:
    ref: str
    donor: str
    amount: str
    currency: str
    fx_rate: str
    received_on: str
    description: str
    tag: str
    #: What must be stored for a good row.
    minor: int | None = None
    donor_key: str | None = None


def today() -> date:
    return datetime.now(UTC).date()  # the app's ORG_TIMEZONE is UTC in the tests


@st.composite
def amounts(draw, clean: bool):
    if clean or draw(st.integers(0, 3)):
        minor = draw(st.integers(1, LARGEST_GOOD))
        units, cents = divmod(minor, 100)
        forms = [f"{units}.{cents:02d}"]
        if cents == 0:
            forms += [str(units), f"{units}.0"]
        elif cents % 10 == 0:
            forms.append(f"{units}.{cents // 10}")
        text = draw(st.sampled_from(forms))
        if draw(st.booleans()):
            text = f" {text} "
        return text, GOOD, minor
    kind = draw(st.sampled_from([BAD, BAD, BAD, HUGE]))
    if kind == HUGE:
        return draw(st.sampled_from(HUGE_AMOUNTS)), HUGE, None
    return draw(st.sampled_from(["0", "0.00", "-5.00", "-0.01", "+5", "1.005", "12.345", "1e3",
                                 "1,000.00", "", "abc", "NaN", "$5", "5 00",
                                 "100000000.01"])), BAD, None


@st.composite
def currencies(draw, clean: bool):
    good = [("USD", ""), ("usd", ""), (" USD ", ""), ("EUR", "1.1")]
    bad = [("EUR", ""), ("USD", "1.1"), ("XAU", "1"), ("XXX", ""), ("US", ""), ("", ""),
           ("€", ""), ("DOLLARS", ""), ("EUR", "-1"), ("EUR", "abc")]
    if clean or draw(st.integers(0, 3)):
        return (*draw(st.sampled_from(good)), GOOD)
    return (*draw(st.sampled_from(bad)), BAD)


@st.composite
def dates(draw, clean: bool):
    if clean or draw(st.integers(0, 3)):
        day = draw(st.dates(min_value=date(2025, 1, 1), max_value=today() - timedelta(days=1)))
        return day.isoformat(), GOOD
    return draw(st.sampled_from(["2026-02-30", "2025-13-01", "05/01/2025", "2025-1-5", "",
                                 "yesterday", "2025-01-01T00:00:00",
                                 (today() + timedelta(days=30)).isoformat()])), BAD


@st.composite
def texts(draw):
    text = draw(st.one_of(st.sampled_from(FORMULA_TEXT), st.text(max_size=30)))
    return text, BAD if "\x00" in text else GOOD


@st.composite
def uploads(draw):
    n = next(EXAMPLES)
    donors = {f"X{n}-D1": f"Fuzz Donor {n} One", f"X{n}-D2": f"Fuzz Dönor {n} \"Two\""}
    mode = draw(st.sampled_from(["clean", "mixed", "huge"]))
    clean = mode != "mixed"
    size = draw(st.integers(1, 6))
    huge_at = draw(st.integers(0, size - 1)) if mode == "huge" else None
    rows: list[Row] = []
    for i in range(size):
        tags = []
        if rows and not clean and draw(st.integers(0, 5)) == 0:
            ref = rows[-1].ref  # a repeat of the row before
            # Refused only if an earlier row with this ref was itself staged (a bad row is
            # not; a row repeating a bad one is, and a third repeats that one).
            staged = any(r.ref.strip() == ref.strip() and r.tag != BAD for r in rows)
            tags.append(BAD if staged else GOOD)
        else:
            ref = f"{draw(st.sampled_from(REF_PREFIXES))}X{n}-G{i}"
        if clean or draw(st.integers(0, 4)):
            donor_key = draw(st.sampled_from(sorted(donors)))
            donor = draw(st.sampled_from([donor_key, f" {donor_key} "]))
            tags.append(GOOD)
        else:
            donor_key, donor = None, draw(st.sampled_from([f"X{n}-NOPE", "", "D1"]))
            tags.append(BAD)
        amount, amount_tag, minor = draw(amounts(clean))
        if i == huge_at:  # an otherwise good file with one amount too large to store
            amount, amount_tag, minor = draw(st.sampled_from(HUGE_AMOUNTS)), HUGE, None
        currency, fx_rate, currency_tag = draw(currencies(clean))
        received_on, date_tag = draw(dates(clean))
        description, text_tag = draw(texts())
        tags += [amount_tag, currency_tag, date_tag, text_tag]
        # An amount too large to store is above the largest gift (MAX_GIFT_MINOR): since
        # that limit, the check finds it as a bad row of its own, like any other.
        tag = BAD if BAD in tags or HUGE in tags else GOOD
        rows.append(Row(ref, donor, amount, currency, fx_rate, received_on, description, tag,
                        minor, donor_key))
    return n, donors, rows


def gifts_csv(rows: list[Row]) -> tuple[str, list[int]]:
    """The file, and the line each row starts on (a quoted line break makes a row span lines)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(GIFT_COLUMNS)
    lines, line = [], 2
    for row in rows:
        one = io.StringIO()
        csv.writer(one, lineterminator="\r\n").writerow(
            [row.ref, row.donor, row.amount, row.currency, row.received_on, row.description,
             row.fx_rate])
        text = one.getvalue()
        out.write(text)
        lines.append(line)
        line += len(re.findall(r"\r\n|\r|\n", text))
    return out.getvalue(), lines


def donors_csv(donors: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["external_id", "type", "name"])
    for key, name in donors.items():
        writer.writerow([key, "person", name])
    return out.getvalue()


COUNTED = (Donor, DonorExternalId, Gift, Decision, Attribution, AuditEntry, FundingDay)


def counts(app) -> dict[str, int]:
    with app.extensions["armslength"].sessions() as session:
        return {m.__name__: session.execute(select(func.count()).select_from(m)).scalar_one()
                for m in COUNTED}


def funding_total(app) -> int:
    with app.extensions["armslength"].sessions() as session:
        return session.execute(select(func.coalesce(func.sum(FundingDay.total_minor), 0))).scalar_one()


def test_generated_gift_rows_are_imported_exactly_or_refused_with_nothing_written(app, web_as,
                                                                                 job_worker):
    fundraiser = web_as("fundraiser")

    @given(uploads())
    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large])
    def check(upload_):
        n, donors, rows = upload_
        gifts, lines = gifts_csv(rows)
        before = counts(app)
        funded_before = funding_total(app)
        response = upload(fundraiser, "import", donors=donors_csv(donors), gifts=gifts)
        status = response.status_code
        assert status < 500, (status, gifts)
        bad = {("gifts.csv", line) for row, line in zip(rows, lines, strict=True) if row.tag == BAD}

        if bad:
            assert response.job["status"] == "failed", (response.job, gifts)
            found = set(errors_of(response))
            assert found == bad, (found, bad, gifts)
            assert counts(app) == before, gifts  # nothing at all was written
            return

        assert status == 200, (status, errors_of(response), gifts)
        assert response.job["status"] == "done", (response.job, gifts)
        assert f"{len(donors)} donors, 0 affiliations and {len(rows)} gifts" in \
            response.get_data(as_text=True)
        after = counts(app)
        assert after["Gift"] == before["Gift"] + len(rows)
        assert after["Decision"] == before["Decision"] + len(rows)
        with app.extensions["armslength"].sessions() as session:
            donor_ids = dict(session.execute(
                select(DonorExternalId.external_id, DonorExternalId.donor_id)
                .where(DonorExternalId.external_id.in_(list(donors)))).all())
            assert set(donor_ids) == set(donors)
            stored = {g.external_ref: g for g in session.execute(
                select(Gift).where(Gift.donor_id.in_(list(donor_ids.values())))).scalars()}
            assert len(stored) == len(rows)
            for row in rows:
                gift = stored[row.ref.strip()]
                currency = row.currency.strip().upper()
                assert (gift.amount_minor, gift.currency, gift.received_on.isoformat(),
                        gift.donor_id, gift.description) == \
                    (row.minor, currency, row.received_on, donor_ids[row.donor_key],
                     row.description.strip() or None), row
                reporting = row.minor if currency == "USD" else \
                    int((row.minor * EUR_RATE).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
                assert gift.reporting_amount_minor == reporting, row
                # Ordinary donors' money, held only when it is a large gift.
                assert gift.status == ("held" if reporting >= LARGE_GIFT else "accepted"), row
                decisions = session.execute(select(func.count()).select_from(Decision)
                                            .where(Decision.gift_id == gift.id)).scalar_one()
                entries = session.execute(select(func.count()).select_from(AuditEntry).where(
                    AuditEntry.action == "gift.recorded", AuditEntry.entity_id == gift.id)
                ).scalar_one()
                assert (decisions, entries) == (1, 1), row
        assert funding_total(app) == funded_before + sum(
            stored[row.ref.strip()].reporting_amount_minor for row in rows
            if stored[row.ref.strip()].status == "accepted")

    check()


def test_an_amount_too_large_to_store_is_refused_and_nothing_is_written(app, web_as, job_worker):
    """Found by the test above: such a row passed the checks, then failed in the database
    mid-import, and the page answered 500 (the import was rolled back, nothing written)."""
    fundraiser = web_as("fundraiser")
    donors = {"BIG-D1": "Big Donor"}
    for amount in ("99999999999999999999.99", "92233720368547758.08"):
        rows = [Row("BIG-G1", "BIG-D1", "10.00", "USD", "", "2025-03-01", "", GOOD, 1000, "BIG-D1"),
                Row("BIG-G2", "BIG-D1", amount, "USD", "", "2025-03-02", "", HUGE)]
        gifts, lines = gifts_csv(rows)
        before = counts(app)
        response = upload(fundraiser, "import", donors=donors_csv(donors), gifts=gifts)
        assert response.job["status"] == "failed", response.job
        assert set(errors_of(response)) == {("gifts.csv", lines[1])}  # above MAX_GIFT_MINOR
        assert counts(app) == before

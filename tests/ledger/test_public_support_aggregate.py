"""The public-support reader sums in the database (GROUP BY donor and year) and gives only
split gifts and unusual grants one by one (issue 16's bench target). It must compute exactly
what the per-gift reader it replaced computed, on a ledger with every kind of gift the
reader treats apart: joint gifts, refunds, companies under parents, spouses, governmental
donors, unusual grants (bench.public_support writes such a ledger)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, insert, select, update
from sqlmodel import Session

from app.errors import NotAllowed
from app.ledger.public_support import contributions, public_support
from bench.legacy_public_support import contributions as per_gift_contributions
from bench.public_support import generate
from models import Attribution, Donor, Gift, Refund, utcnow
from models.public_support import UnusualGrant
from policies.public_support import DEFAULT_RULES_FILE, compute, load_rules, parse_rules


def _figures(result):
    """Every figure the API, pages and CLI show: the lines, the totals, each contributor
    listed (over the limit, not limited, or several donors as one) and how many there are.
    The reader gives compute only the contributors that can be listed and counts the rest
    (each alone under the limit), so the unlisted ones are not compared one by one."""
    return (result.total_support_minor, result.donor_limit_minor, result.excess_minor,
            result.public_support_minor, result.percentage,
            [(y.year, y.contributions_minor, y.unusual_minor, y.unusual_gift_ids)
             for y in result.years],
            [(c.group_id, c.donor_ids, c.total_minor, c.excess_minor, c.unlimited)
             for c in result.contributors
             if c.excess_minor > 0 or c.unlimited or len(c.donor_ids) > 1],
            result.contributor_count or len(result.contributors))


def test_sums_in_the_database_compute_what_the_gifts_one_by_one_compute(database_url):
    made = generate(database_url, 3000, seed=7)
    assert made["refunds"] > 0
    rules = load_rules()
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            # Unusual grants besides the generator's: one of a joint gift's (split and
            # unusual), one of a company's and one refunded in part.
            joint = conn.execute(select(Attribution.gift_id).where(
                Attribution.basis == "explicit").limit(1)).scalar_one()
            refunded = conn.execute(select(Refund.gift_id).limit(1)).scalar_one()
            company = conn.execute(select(Gift.id).join(Donor, Donor.id == Gift.donor_id)
                                   .where(Donor.type == "organization").limit(1)).scalar_one()
            conn.execute(insert(UnusualGrant), [
                {"gift_id": g, "reason": "test", "marked_at": utcnow()}
                for g in {joint, refunded, company}
                if conn.execute(select(UnusualGrant.gift_id).where(
                    UnusualGrant.gift_id == g)).first() is None])
        # A limit no donor reaches (every contributor is then counted, none summed apart
        # for being over it) as well as the real one.
        high = parse_rules(DEFAULT_RULES_FILE.read_text(encoding="utf-8").replace(
            'donor_limit = "2/100"', 'donor_limit = "90/100"'))
        with Session(engine) as session:
            for year, rules in ((2023, load_rules()), (2025, load_rules()),
                                (2026, load_rules()), (2025, high)):
                old = per_gift_contributions(session, year, rules)
                before = compute(year, old[0], old[1], rules)
                facts = contributions(session, year, rules)
                after = facts.compute(year, rules)
                assert _figures(after) == _figures(before)
                assert after.contributor_count == len(before.contributors)
                # Far fewer objects than gift parts, and than donors: the point of summing
                # in the database and of summing apart only those who can matter.
                assert len(facts.contributions) + len(facts.donor_sums) < len(old[0]) * 0.7
                assert len(facts.donor_sums) < len(before.contributors) * 0.7
                assert facts.others > 0
                # Every figure still leads to its gifts, read on demand.
                found = public_support(session, year, rules, "USD")
                for y_after, y_before in zip(found.result.years, before.years, strict=True):
                    assert y_after.gift_ids == y_before.gift_ids
                    assert y_after.gift_count == len(y_before.gift_ids)
                listed = {(c.group_id, c.unlimited): c for c in before.contributors}
                for c in found.result.contributors:
                    if c.excess_minor > 0 or c.unlimited or len(c.donor_ids) > 1:
                        assert c.gift_ids == listed[c.group_id, c.unlimited].gift_ids
                    assert c.gift_count == len(listed[c.group_id, c.unlimited].gift_ids)
    finally:
        engine.dispose()


def test_two_reporting_currencies_in_the_five_years_are_refused(database_url):
    generate(database_url, 300, seed=3)
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(update(Gift).where(Gift.id == 5).values(reporting_currency="EUR"))
        with Session(engine) as session:
            with pytest.raises(NotAllowed, match="more than one reporting currency"):
                contributions(session, 2025, load_rules())
    finally:
        engine.dispose()

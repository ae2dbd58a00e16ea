"""Schedule B sums the year per donor in the database and reads only the gifts of the donors
listed (issue 16's bench). It must list exactly what the per-gift reader it replaced
(bench/legacy_schedule_b.py) listed, with the same figures, for contributors just below, at
and just above each threshold: the $5,000 rule and the special rule's 2% of the year."""

from __future__ import annotations

from datetime import date

from sqlalchemy import create_engine, func, insert, select
from sqlmodel import Session

from app.ledger.schedule_b import schedule_b_of, year_schedule
from bench.legacy_schedule_b import year_gifts
from bench.public_support import generate
from models import Donor, Gift, Refund, utcnow
from policies.public_support import load_rules
from policies.schedule_b import schedule_b

YEAR = 2025


def _figures(result):
    return (result.total_contributions_minor, result.threshold_minor, result.special_rule,
            [(c.number, c.donor_id, c.total_minor, c.cash_minor, c.noncash_minor,
              c.cash_gift_ids, c.noncash) for c in result.contributors])


class _Ledger:
    """Donors and gifts added beside the generated ones, with ids after theirs."""

    def __init__(self, conn):
        self.conn = conn
        self.donor = conn.execute(select(func.max(Donor.id))).scalar_one()
        self.gift = conn.execute(select(func.max(Gift.id))).scalar_one()
        self.refund = conn.execute(select(func.max(Refund.id))).scalar_one() or 0

    def donor_with(self, *gifts: tuple[int, str], refunds: tuple = ()) -> int:
        """gifts: (amount, kind) received mid-year; refunds: (index of the gift, amount,
        date), a negative amount reversing the refund before it."""
        self.donor += 1
        now = utcnow()
        self.conn.execute(insert(Donor), [{
            "id": self.donor, "type": "person", "name": f"Edge {self.donor}",
            "category": "individual", "anonymous": False, "created_at": now}])
        ids = []
        for amount, kind in gifts:
            self.gift += 1
            ids.append(self.gift)
            self.conn.execute(insert(Gift), [{
                "id": self.gift, "donor_id": self.donor, "amount_minor": amount,
                "currency": "USD", "reporting_amount_minor": amount,
                "reporting_currency": "USD", "fx_rate": "1", "fx_source": "identity",
                "received_on": date(YEAR, 6, 1), "method": "card" if kind == "cash" else "other",
                "kind": kind, "description": None if kind == "cash" else "a painting",
                "purpose": "general", "status": "accepted", "refunded_minor": 0,
                "lab_minor": 0, "disclose": False, "created_at": now}])
        last = None
        for index, amount, on in refunds:
            self.refund += 1
            self.conn.execute(insert(Refund), [{
                "id": self.refund, "gift_id": ids[index], "amount_minor": amount,
                "reporting_amount_minor": amount, "refunded_on": on,
                "gift_received_on": date(YEAR, 6, 1), "created_at": now,
                "reverses_refund_id": last if amount < 0 else None}])
            last = self.refund
        return self.donor


def _year_total(conn) -> int:
    gross = conn.execute(select(func.sum(Gift.reporting_amount_minor)).where(
        Gift.status == "accepted", Gift.received_on >= date(YEAR, 1, 1),
        Gift.received_on <= date(YEAR, 12, 31))).scalar_one()
    refunded = conn.execute(select(func.sum(Refund.reporting_amount_minor))
                            .join(Gift, Gift.id == Refund.gift_id).where(
        Gift.status == "accepted", Gift.received_on >= date(YEAR, 1, 1),
        Gift.received_on <= date(YEAR, 12, 31),
        Refund.refunded_on <= date(YEAR, 12, 31))).scalar_one()
    return int(gross) - int(refunded or 0)


def test_summed_in_the_database_lists_what_the_gifts_one_by_one_list(database_url):
    generate(database_url, 2000, seed=11)
    rules = load_rules()
    five_thousand = rules.schedule_b_threshold_minor
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            ledger = _Ledger(conn)
            mid, after = date(YEAR, 7, 1), date(YEAR + 1, 1, 15)
            at_5000 = {
                "below": ledger.donor_with((five_thousand - 1, "cash")),
                "at": ledger.donor_with((five_thousand - 100_000, "cash"), (100_000, "in_kind")),
                "above": ledger.donor_with((five_thousand + 1, "in_kind")),
                # over it before a refund in the year, under it after
                "refunded below": ledger.donor_with((five_thousand + 100, "cash"),
                                                    refunds=((0, 101, mid),)),
                # a refund reversed: at it again
                "reversed at": ledger.donor_with((five_thousand, "cash"),
                                                 refunds=((0, 1000, mid), (0, -1000, mid))),
                # refunded after the year closed: the year as filed keeps it
                "refunded later at": ledger.donor_with((five_thousand, "cash"),
                                                       refunds=((0, 1000, after),)),
                # a gift refunded whole beside others that reach it
                "whole refund above": ledger.donor_with(
                    (five_thousand, "cash"), (2_000, "cash"), refunds=((1, 2_000, mid),)),
            }
            # The special rule's threshold is 2% of the year's total, rounded up, and the
            # total includes these donors' gifts: x = ceil((total + 3x) * 2 / 100).
            fraction = rules.schedule_b_special_fraction
            total, x = _year_total(conn), 0
            while x != (x := -(-(total + 3 * x) * fraction.numerator // fraction.denominator)):
                pass
            at_share = {"below": ledger.donor_with((x - 1, "cash")),
                        "at": ledger.donor_with((x - 7, "cash"), (7, "in_kind")),
                        "above": ledger.donor_with((x + 1, "cash"))}
        with Session(engine) as session:
            for special_rule, edge in ((False, at_5000), (True, at_share)):
                old = schedule_b(YEAR, year_gifts(session, YEAR), rules,
                                 special_rule=special_rule)
                new = year_schedule(session, YEAR, rules, special_rule=special_rule)
                assert _figures(new) == _figures(old)
                listed = {c.donor_id for c in new.contributors}
                assert new.threshold_minor == (x if special_rule else five_thousand)
                assert {name for name, donor in edge.items() if donor in listed} == {
                    name for name in edge if "below" not in name}
            # Non-cash parts kept apart, with what each gift was.
            by_donor = {c.donor_id: c for c in schedule_b(
                YEAR, year_gifts(session, YEAR), rules, special_rule=False).contributors}
            at = by_donor[at_5000["at"]]
            assert (at.cash_minor, at.noncash_minor) == (five_thousand - 100_000, 100_000)
            assert [g.description for g in at.noncash] == ["a painting"]
            # The whole computation, the special rule decided by the public-support test.
            found = schedule_b_of(session, YEAR, rules, "USD").schedule
            assert _figures(found) == _figures(schedule_b(
                YEAR, year_gifts(session, YEAR), rules, special_rule=found.special_rule))
            # A year with no gift at all.
            empty = year_schedule(session, 2019, rules, special_rule=True)
            assert _figures(empty) == _figures(schedule_b(
                2019, year_gifts(session, 2019), rules, special_rule=True))
            assert empty.total_contributions_minor == 0 and not empty.contributors
    finally:
        engine.dispose()

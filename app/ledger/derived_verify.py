"""Verification of the derived daily totals (funding_day, funding_mix_day) by recomputation.

These two tables are running totals that every gift, review, refund and merge adds to
(app.ledger.funding); the policy's cap rules read them (app.ledger.windows). They are not
sealed row by row: a day's row changes with every gift of that day, and the upsert adds in
the database, so sealing it would need each upsert's resulting row back (RETURNING) and one
more seal in every gift's entry, on the gift-intake hot path. A seal would also only say
"as last written"; recomputing says "as the sealed rows they derive from (gift, refund,
attribution, donor) imply", which also catches a slip in the incremental upkeep. So
verification recomputes them and reports every day whose stored figures differ: an insider
who lowers a day's lab_minor to let a lab's money past the cap is caught by the same
`verify-audit` that checks the chain.

The same goes for donor.possibly_covered, the flag that puts a record in the possible-match
lookup's partial indexes (app.ledger.identity): derived from the donor's affiliations and
their organisations, it is recomputed here for every donor, and a donor whose stored flag
differs is reported. Cleared by hand, it would hide a lab executive from every namesake's
screening; that is a finding, like a lowered lab_minor.

Cost: one GROUP BY over the counted gifts, the counted gifts that have refunds (read one by
one, so their rounding is app.ledger.windows' own), the funding mix's GROUP BY
(funding.recomputed_mix_days), and both tables, which hold one row per gift date.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from app.ledger.funding import recomputed_mix_days
from app.ledger.identity import possibly_covered_tie
from app.ledger.windows import gift_refunded
from models import Donor, FundingDay, FundingMixDay, Gift

#: Findings listed in a report; beyond this only the count grows.
MAX_FINDINGS = 1000

_DAY_FIGURES = ("total_minor", "lab_minor", "gift_count", "refunded_minor", "refunded_lab_minor")
_COUNTED = (Gift.status == "accepted", Gift.kind == "cash")  # Gift.counts_as_funding


@dataclass(frozen=True)
class DerivedFinding:
    table: str
    #: The row's key: its day, and for funding_mix_day its category ("2026-03-01 company").
    key: str
    #: The figures that differ, as stored and as recomputed.
    stored: dict
    recomputed: dict

    def public(self) -> dict:
        return {"table": self.table, "key": self.key, "stored": self.stored,
                "recomputed": self.recomputed}

    def __str__(self) -> str:
        figures = ", ".join(f"{name} {self.stored[name]} (recomputed {self.recomputed[name]})"
                            for name in self.stored)
        return f"{self.table} {self.key}: {figures}"


@dataclass
class DerivedReport:
    #: Rows compared (stored or recomputed, either side).
    rows: int = 0
    findings: list[DerivedFinding] = field(default_factory=list)
    differing: int = 0
    #: Of those, donors whose possibly_covered differs from its recomputation (not counted in
    #: rows, which counts the daily totals compared, as docs/api.md says).
    flags_differing: int = 0

    @property
    def ok(self) -> bool:
        return self.differing == 0

    def add(self, finding: DerivedFinding) -> None:
        self.differing += 1
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(finding)


def recomputed_funding_days(session: Session | Connection) -> dict:
    """funding_day as it should be: {day: (total, lab, count, refunded, refunded lab)}."""
    days: dict = {}
    for day, total, lab, count in session.execute(
            select(Gift.received_on, func.sum(Gift.reporting_amount_minor),
                   func.sum(Gift.lab_minor), func.count())
            .where(*_COUNTED).group_by(Gift.received_on)):
        days[day] = [int(total), int(lab), int(count), 0, 0]
    for gift in session.execute(
            select(Gift.received_on, Gift.amount_minor, Gift.reporting_amount_minor,
                   Gift.lab_minor, Gift.refunded_minor)
            .where(*_COUNTED, Gift.refunded_minor != 0)):
        refunded, lab_refunded = gift_refunded(gift)
        days[gift.received_on][3] += refunded
        days[gift.received_on][4] += lab_refunded
    return {day: tuple(figures) for day, figures in days.items()}


def verify_derived_of(engine: Engine) -> DerivedReport:
    """verify_derived in one consistent snapshot of its own (REPEATABLE READ on PostgreSQL;
    one read transaction on SQLite), so a gift committed between reading the totals and
    reading the gifts is not mistaken for an edit."""
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect().execution_options(**options) as conn, conn.begin():
        return verify_derived(conn)


def verify_derived(session: Session | Connection) -> DerivedReport:
    """Compare both tables with their recomputation (see the module); all-zero rows (a day
    whose gifts all stopped counting) equal no row."""
    report = DerivedReport()
    stored_days = {row[0]: tuple(int(v) for v in row[1:]) for row in session.execute(
        select(FundingDay.day, *[getattr(FundingDay, name) for name in _DAY_FIGURES]))}
    _compare(report, "funding_day", _DAY_FIGURES, stored_days,
             recomputed_funding_days(session), lambda day: day.isoformat())
    stored_mix = {(day, category): (int(credited),) for day, category, credited in
                  session.execute(select(FundingMixDay.day, FundingMixDay.category,
                                         FundingMixDay.credited_ppm))}
    recomputed_mix = {(row["day"], row["category"]): (row["credited_ppm"],)
                      for row in recomputed_mix_days(session)}
    _compare(report, "funding_mix_day", ("credited_ppm",), stored_mix, recomputed_mix,
             lambda key: f"{key[0].isoformat()} {key[1]}")
    tie = possibly_covered_tie(Donor.id)
    for donor_id, stored, recomputed in session.execute(
            select(Donor.id, Donor.possibly_covered, tie)
            .where(Donor.possibly_covered != tie).order_by(Donor.id)):
        report.flags_differing += 1
        report.add(DerivedFinding("donor", str(donor_id), {"possibly_covered": bool(stored)},
                                  {"possibly_covered": bool(recomputed)}))
    return report


def _compare(report: DerivedReport, table: str, names: tuple[str, ...], stored: dict,
             recomputed: dict, label) -> None:
    zero = (0,) * len(names)
    for key in sorted(stored.keys() | recomputed.keys()):
        have, want = stored.get(key, zero), recomputed.get(key, zero)
        report.rows += 1
        if have != want:
            differs = [i for i, (a, b) in enumerate(zip(have, want, strict=True)) if a != b]
            report.add(DerivedFinding(table, label(key),
                                      {names[i]: have[i] for i in differs},
                                      {names[i]: want[i] for i in differs}))

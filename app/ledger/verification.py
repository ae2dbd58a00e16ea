"""Everything `verify-audit`, GET /api/v1/audit/verify and the staff audit check report:
the hash chain end to end, the chain against every signed checkpoint, each published
disclosure against its audit entry and its signed checkpoint, and every ledger row against
the row hash its latest audit entry recorded (app.ledger.row_verify)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlmodel import Session

from app.ledger.audit import ChainReport, verify_chain
from app.ledger.checkpoints import (
    CheckpointReport,
    DisclosureCheck,
    check_disclosures,
    check_funding_reports,
    checkpoint_lengths,
    verify_checkpoints,
)
from app.ledger.derived_verify import DerivedReport, verify_derived_of
from app.ledger.row_verify import MAX_FINDINGS, RowsReport, verify_rows_of
from app.ledger.signing import AuditKeys


@dataclass(frozen=True)
class AuditVerification:
    chain: ChainReport
    checkpoints: CheckpointReport
    disclosures: list[DisclosureCheck]
    rows: RowsReport
    #: funding_day and funding_mix_day against their recomputation (app.ledger.derived_verify).
    derived: DerivedReport
    #: Each published funding page against its audit entry and signed checkpoint.
    funding_reports: tuple[DisclosureCheck, ...] = ()

    @property
    def disclosure_failures(self) -> list[DisclosureCheck]:
        """Disclosures and funding pages that do not hold."""
        return [d for d in (*self.disclosures, *self.funding_reports) if d.problem is not None]

    @property
    def ok(self) -> bool:
        return (self.chain.ok and self.checkpoints.ok and not self.disclosure_failures
                and self.rows.ok and self.derived.ok)

    @property
    def problem(self) -> str | None:
        """The first thing wrong: the chain's own hashes, then a checkpoint, then a disclosure."""
        if not self.chain.ok:
            return self.chain.problem
        if not self.checkpoints.ok:
            return self.checkpoints.problem
        failures = self.disclosure_failures
        if failures:
            return failures[0].problem
        if not self.rows.ok:
            return "ledger rows do not match the audit trail"
        if self.derived.ok:
            return None
        if self.derived.differing == self.derived.flags_differing:
            return "donors' lab-side flags (possibly_covered) do not match their affiliations"
        return "daily funding totals do not match the gifts and refunds they are kept from"

    def public(self) -> dict:
        """The JSON of GET /api/v1/audit/verify (docs/api.md)."""
        cps = self.checkpoints
        latest = cps.latest
        return {
            "ok": self.ok,
            "entries": self.chain.entries,
            "broken_at": self.chain.broken_at,
            "problem": self.problem,
            "checkpoints": {
                "count": cps.count,
                "ok": cps.ok,
                "broken_at": cps.broken_at,
                "problem": cps.problem,
                "failures": [{"id": f.id, "length": f.length,
                              "signed_at": f.signed_at.isoformat(), "problem": f.problem}
                             for f in cps.failures],
                "latest": None if latest is None else {
                    "id": latest.id, "length": latest.length, "head": latest.head,
                    "signed_at": latest.signed_at.isoformat(), "key_id": latest.key_id},
                "entries_after_latest": cps.entries_after_latest,
            },
            "disclosures": {
                "count": len(self.disclosures),
                "verified": sum(1 for d in self.disclosures if d.verified),
                "unsigned": [d.disclosure_id for d in self.disclosures if d.unsigned],
                "failures": [{"disclosure_id": d.disclosure_id, "problem": d.problem}
                             for d in self.disclosures if d.problem is not None],
            },
            "funding_reports": {
                "count": len(self.funding_reports),
                "verified": sum(1 for d in self.funding_reports if d.verified),
                "unsigned": [d.disclosure_id for d in self.funding_reports if d.unsigned],
                "failures": [{"funding_report_id": d.disclosure_id, "problem": d.problem}
                             for d in self.funding_reports if d.problem is not None],
            },
            "chain_ok": self.chain.ok,
            "rows_ok": self.rows.ok,
            "rows_checked": self.rows.rows,
            "row_problems": dict(self.rows.counts),
            "row_findings": [finding.public() for finding in self.rows.findings],
            "row_findings_limit": MAX_FINDINGS,
            "derived_ok": self.derived.ok,
            "derived_checked": self.derived.rows,
            "derived_differing": self.derived.differing,
            "derived_findings": [finding.public() for finding in self.derived.findings],
        }

    def row_lines(self) -> list[str]:
        """The row check for `armslength verify-audit`: one line, then one per finding."""
        rows = self.rows
        if rows.ok:
            return [f"ledger rows match the audit trail: {rows.rows} rows"]
        counts = ", ".join(f"{n} {problem}" for problem, n in rows.counts.items() if n)
        lines = [f"ledger rows DO NOT match the audit trail ({rows.rows} rows checked): {counts}"]
        lines += [f"  {finding}" for finding in rows.findings]
        unlisted = sum(rows.counts.values()) - len(rows.findings)
        if unlisted:
            lines.append(f"  ... and {unlisted} more")
        return lines

    def derived_lines(self) -> list[str]:
        """The recomputation of the daily totals for `armslength verify-audit`."""
        derived = self.derived
        if derived.ok:
            return [f"daily funding totals match their recomputation: {derived.rows} rows"]
        days = derived.differing - derived.flags_differing
        lines = ([f"daily funding totals DO NOT match their recomputation from gifts and refunds "
                  f"({days} of {derived.rows} rows)"] if days else
                 [f"daily funding totals match their recomputation: {derived.rows} rows"])
        if derived.flags_differing:
            lines.append(f"donors' lab-side flags (possibly_covered) DO NOT match their "
                         f"affiliations: {derived.flags_differing} donors")
        lines += [f"  {finding}" for finding in derived.findings]
        if derived.differing > len(derived.findings):
            lines.append(f"  ... and {derived.differing - len(derived.findings)} more")
        return lines


def verify_audit(session: Session, keys: AuditKeys, external=()) -> AuditVerification:
    """`external`: checkpoints kept outside the database (checkpoints.checkpoints_in_file)."""
    engine = session.get_bind()
    # The row check reads on its own connection; while this thread hashes the chain (Python),
    # the database does most of the row check's work (app.ledger.row_sql), so the two overlap.
    # Not for an in-memory SQLite database, which another connection would not see.
    alongside = engine.url.database not in (None, "", ":memory:")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-rows") as pool:
        rows = pool.submit(verify_rows_of, engine) if alongside else None
        # One walk of the trail serves the chain and the checkpoints (the entries at their
        # lengths).
        chain = verify_chain(session, note=checkpoint_lengths(session, external))
        checkpoints = verify_checkpoints(session, keys, external, chain)
        disclosures = check_disclosures(session, keys)
        funding = tuple(check_funding_reports(session, keys))
        derived = verify_derived_of(engine)
        return AuditVerification(chain, checkpoints, disclosures,
                                 rows.result() if rows is not None else verify_rows_of(engine),
                                 derived, funding)

"""The CSV import as a job: the staff import page and `armslength import-csv` run it.

The same CsvImport as before (app/ledger/csv_import.py): every row checked, then every
gift through the one door in one transaction under the ledger lock, all or nothing. The
job's "done" is written in that same transaction, so a job run again after a crash
either finds it done or finds nothing imported; and the rows' own ids (external_id,
external_ref) are refused if already recorded, so the same files never import twice.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from app.errors import LedgerBusy
from app.http_errors import answer_for
from app.jobs import JobContext, JobFailed, job_kind
from app.ledger.csv_import import KINDS, CsvImport, ImportAborted, ImportResult
from models import Job

#: Besides gifts.write (the import page's own permission), what each file needs.
FILE_PERMISSIONS = {"donors": "donors.write", "affiliations": "affiliations.write",
                    "gifts": "gifts.write"}
#: Bad rows and warnings kept in the job's result (the rest are counted).
LISTED = 500


def earlier_import(session: Session, digest: str) -> tuple[int, str] | None:
    """(job id, why) of an import of the same files that is done or waiting, if any: a
    courtesy that stops an accidental second upload early. It is a check, then an insert,
    so two uploads at the same moment both pass it, and a job left "running" does not
    count (its worker may have died mid-way, the import rolled back). What guarantees that
    no gift is imported twice is the rows' own ids: every gift row carries an external_ref,
    unique in the ledger, checked inside the import's locked transaction."""
    found = session.execute(
        select(Job.id, Job.status).where(Job.kind == "csv_import", Job.input_sha256 == digest,
                                         Job.status.in_(("queued", "done")))
        .order_by(Job.id.desc()).limit(1)).first()
    if found is None:
        return None
    return found.id, "imported already" if found.status == "done" else "waiting to be imported"


def permissions_for(kinds) -> tuple[str, ...]:
    return tuple(dict.fromkeys(["gifts.write", *(FILE_PERMISSIONS[k] for k in kinds)]))


def count_rows(path: Path) -> int:
    """Data lines in a file, to size the progress bar (a quoted newline counts one more)."""
    lines, last = 0, b"\n"
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)


def _result(result: ImportResult) -> dict:
    return {"donors": result.donors, "affiliations": result.affiliations, "gifts": result.gifts,
            "outcomes": dict(result.outcomes), "rescreened": result.rescreened,
            "not_accepted": [list(row) for row in result.not_accepted]}


def import_files(ctx: JobContext, paths: dict[str, Path], names: dict[str, str], *,
                 dry_run: bool = False) -> dict:
    """Check the files, then (unless dry_run) import them; the job's result either way.
    Bad rows, a row the ledger refused, or a busy ledger fail the job, with nothing written."""
    state = ctx.app.extensions["armslength"]
    session = ctx.session
    totals = {"checking": sum(count_rows(p) for p in paths.values()), "importing": 0}

    def progress(phase: str, done: int) -> None:
        ctx.progress(phase, done, max(totals[phase], done))

    with CsvImport(session, today=state.today(), reporting_currency=state.reporting_currency,
                   max_gift_minor=state.max_gift_minor, policy=state.policy_for(session),
                   progress=progress) as job:
        for kind in KINDS:  # donors first: later files may name donors from this upload
            if kind in paths:
                with open(paths[kind], "rb") as stream:
                    job.check(kind, stream)
        staged = job.staged()
        outcome = {"names": names, "dry_run": dry_run, "rows": dict(job.rows), "staged": staged,
                   "errors": [asdict(e) for e in job.errors[:LISTED]],
                   "errors_total": len(job.errors),
                   "warnings": [asdict(w) for w in job.warnings[:LISTED]],
                   "warnings_total": len(job.warnings)}
        checked = sum(job.rows.values())
        ctx.progress("checking", checked, checked, force=True)
        if job.errors:
            count = len(job.errors)
            raise JobFailed(f"{count} bad row{'' if count == 1 else 's'}: nothing was imported",
                            outcome)
        if dry_run:
            return {**outcome, "checked": True}
        totals["importing"] = sum(staged.values())

        def done(result: ImportResult) -> None:
            ctx.finish(session, {**outcome, "result": _result(result)})

        try:
            result = job.run(ctx.actor, state.policy_for(session), names, job_id=ctx.job_id,
                             before_commit=done)
        except ImportAborted as error:
            where = f"{names.get(error.file, error.file)}" + (f" line {error.line}" if error.line else "")
            raise JobFailed(f"nothing was imported: the ledger refused {where}: {error.message}",
                            {**outcome, "aborted": {"file": error.file, "line": error.line,
                                                    "message": error.message}}) from error
        except (DataError, OverflowError, LedgerBusy) as error:
            # A number the database cannot store, or no lock in time: all rolled back.
            message = answer_for(error).message
            raise JobFailed(f"nothing was imported: {message}",
                            {**outcome, "problem": message}) from error
    return {**outcome, "result": _result(result)}


@job_kind("csv_import", permissions=("gifts.write",), label="CSV import")
def import_csv(ctx: JobContext) -> dict:
    names: dict[str, str] = ctx.params["names"]
    if ctx.job.started_by_id is None and ctx.params.get("paths"):
        # `armslength import-csv`, run by whoever runs the server: its files where they are.
        paths = {kind: Path(ctx.params["paths"][kind]) for kind in KINDS if kind in names}
    else:
        paths = {kind: ctx.input(kind) for kind in KINDS if kind in names}
    missing = [kind for kind, path in paths.items() if not path.is_file()]
    if missing:
        # Another machine's upload folder, or cleaned up: the worker must share JOBS_DIR.
        raise JobFailed(f"the uploaded file(s) {', '.join(missing)} are not in JOBS_DIR on "
                        "the worker's machine; nothing was imported")
    return import_files(ctx, paths, names, dry_run=bool(ctx.params.get("dry_run")))

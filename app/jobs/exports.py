"""Big exports as jobs: the same CSV as the export page streams (formulas neutralised),
written to a file under JOBS_DIR that the job page offers to staff with `exports`."""

from __future__ import annotations

import os
from datetime import date

from app.db.locking import ledger_write
from app.jobs import JobContext, JobFailed, job_kind
from app.ledger import audit
from app.ledger.csv_export import (
    DONOR_HEADER,
    GIFT_HEADER,
    DonorFilters,
    GiftFilters,
    count_donors,
    count_gifts,
    csv_chunks,
    donor_rows,
    gift_rows,
)


def _filters(what: str, given: dict):
    if what == "donors":
        return DonorFilters(type=given.get("type"))
    if what == "gifts":
        day = lambda name: date.fromisoformat(given[name]) if given.get(name) else None  # noqa: E731
        return GiftFilters(received_from=day("received_from"), received_to=day("received_to"),
                           status=given.get("status"))
    raise JobFailed(f"no export named {what!r}")


EXPORTS = {"donors": (DONOR_HEADER, donor_rows, count_donors),
           "gifts": (GIFT_HEADER, gift_rows, count_gifts)}


@job_kind("export", permissions=("exports",), label="Export")
def export_csv(ctx: JobContext) -> dict:
    what = ctx.params["what"]
    filters = _filters(what, ctx.params.get("filters") or {})
    header, rows, count = EXPORTS[what]
    session = ctx.session
    total = count(session, filters)
    with ledger_write(session):
        audit.append(session, ctx.actor, f"export.{what}", "export", None,
                     {"format": "csv", "filters": filters.as_dict(), "rows_at_request": total,
                      "job_id": ctx.job_id})
    today = ctx.app.extensions["armslength"].today()
    path = ctx.output(f"{what}-{today.isoformat()}.csv")
    partial = path.with_name(path.name + ".part")
    written = 0

    def counted(source):
        nonlocal written
        for row in source:
            written += 1
            yield row

    with open(partial, "w", encoding="utf-8", newline="") as out:
        for chunk in csv_chunks(header, counted(rows(session, filters))):
            out.write(chunk)
            ctx.progress("writing", written, max(total, written))
    session.rollback()
    os.replace(partial, path)  # the download never sees half a file
    ctx.progress("writing", written, max(total, written), force=True)
    return {"what": what, "rows": written, "bytes": path.stat().st_size, "file": path.name}

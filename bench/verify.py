"""Timing of the ledger's verification (app.ledger.verification.verify_audit: what
`armslength verify-audit` and GET /api/v1/audit/verify run) on a generated ledger: the whole
of it, and its two long parts on their own (the chain walk, which also serves the signed
checkpoints, and the live rows against their row hashes).

With a git ref (--verify-against), the same verify_audit of that revision's code is timed
too, each run in a fresh child process, alternating with this checkout's, on the same
ledger: the ratio is measured side by side.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from bench.db import Target

ROOT = Path(__file__).resolve().parent.parent

#: Run in a child process: verify_audit on the ledger, timed, as JSON on the last line.
_CHILD = """
import json, sys, time
from app import create_app
from app.extensions import audit_keys
from app.ledger.verification import verify_audit
app = create_app({"DATABASE_URL": sys.argv[1], "SECRET_KEY": "bench-" + "x" * 40,
                  "ORG_TIMEZONE": "UTC"})
st = app.extensions["armslength"]
with app.app_context(), st.sessions() as session:
    started = time.perf_counter()
    result = verify_audit(session, audit_keys())
    seconds = time.perf_counter() - started
st.engine.dispose()
print(json.dumps({"seconds": seconds, "ok": result.ok, "entries": result.chain.entries,
                  "rows": result.rows.rows}))
"""


@dataclass(frozen=True)
class VerifyResult:
    entries: int
    rows: int
    total_s: float
    chain_s: float
    rows_s: float
    ok: bool
    #: verify_audit of the reference revision, median seconds (None: not compared).
    reference_s: float | None = None


def _child(source: Path, url: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, url], cwd=source, capture_output=True,
                         text=True, check=False, env={"PYTHONPATH": str(source),
                                                      "PATH": "/usr/bin:/bin"})
    if out.returncode != 0:
        raise RuntimeError(f"verify_audit in {source} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _checkout(ref: str, into: Path) -> Path:
    """The tree of a git ref, unpacked (no worktree, nothing in the repository changes)."""
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True,
                             check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _parts(target: Target) -> tuple[float, float, int, int, bool]:
    """The chain walk and the row check on their own, in this process (seconds)."""
    from app.ledger.audit import verify_chain
    from app.ledger.checkpoints import checkpoint_lengths
    from app.ledger.row_verify import verify_rows
    from bench.db import app_for

    app = app_for(target)
    st = app.extensions["armslength"]
    try:
        with st.sessions() as session:
            started = time.perf_counter()
            chain = verify_chain(session, note=checkpoint_lengths(session))
            chain_s = time.perf_counter() - started
            started = time.perf_counter()
            rows = verify_rows(session)
            rows_s = time.perf_counter() - started
    finally:
        st.engine.dispose()
    return chain_s, rows_s, chain.entries, rows.rows, chain.ok and rows.ok


def verify_timings(target: Target, rounds: int, log, against: str | None = None) -> VerifyResult:
    totals, reference, chain_times, row_times = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="armslength-bench-ref-") as tmp:
        old = _checkout(against, Path(tmp)) if against else None
        for _ in range(rounds):
            if old is not None:
                reference.append(_child(old, target.url)["seconds"])
            now = _child(ROOT, target.url)
            totals.append(now["seconds"])
            chain_s, rows_s, entries, rows, ok = _parts(target)
            chain_times.append(chain_s)
            row_times.append(rows_s)
            ok = ok and now["ok"]
    result = VerifyResult(entries, rows, statistics.median(totals), statistics.median(chain_times),
                          statistics.median(row_times), ok,
                          statistics.median(reference) if reference else None)
    versus = (f"; {against}: {result.reference_s:.1f} s "
              f"({result.reference_s / result.total_s:.1f}x)" if against else "")
    log(f"  verify {target.label} {target.name}: verify_audit {result.total_s:.1f} s (chain "
        f"{result.chain_s:.1f} s for {result.entries:,} entries, rows {result.rows_s:.1f} s for "
        f"{result.rows:,} rows), {'ok' if result.ok else 'FAILED'}{versus}")
    return result

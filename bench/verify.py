"""Timing of the ledger's verification (app.ledger.verification): the audit chain, then the
live rows against their row hashes, each on its own, through the app's own session."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from app.ledger.audit import verify_chain
from app.ledger.row_verify import verify_rows
from bench.db import Target, app_for


@dataclass(frozen=True)
class VerifyResult:
    entries: int
    rows: int
    chain_s: float
    rows_s: float
    ok: bool


def verify_timings(target: Target, rounds: int, log) -> VerifyResult:
    app = app_for(target)
    st = app.extensions["armslength"]
    chain_times, row_times = [], []
    try:
        for _ in range(rounds):
            with st.sessions() as session:
                started = time.perf_counter()
                chain = verify_chain(session)
                chain_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                rows = verify_rows(session)
                row_times.append(time.perf_counter() - started)
    finally:
        st.engine.dispose()
    result = VerifyResult(chain.entries, rows.rows, statistics.median(chain_times),
                          statistics.median(row_times), chain.ok and rows.ok)
    log(f"  verify {target.label} {target.name}: chain {result.chain_s:.1f} s "
        f"({result.entries:,} entries), rows {result.rows_s:.1f} s ({result.rows:,} rows), "
        f"{'ok' if result.ok else 'FAILED ' + str(rows.counts)}")
    return result

"""Profile the one door on a copy of the cached 10k-gift ledger (python -m bench first):

    python -m bench.profile_door [sqlite|postgresql] [gifts] [--data-dir DIR]

Prints gifts/s and SQL statements per gift, and writes a pyinstrument profile to
bench/results/door-<backend>.txt. The profiler slows the run: read the rate for
comparison between runs, not as a result (python -m bench measures the rate).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

from pyinstrument import Profiler
from sqlalchemy import event

from app.ledger.gifts import record_gift
from bench import measure
from bench.__main__ import DEFAULT_PG
from bench.db import Databases, app_for
from models.schemas import GiftCreate

ROOT = Path(__file__).resolve().parent.parent
WARM_UP = 20


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_door")
    parser.add_argument("backend", nargs="?", default="sqlite")
    parser.add_argument("gifts", nargs="?", type=int, default=1000)
    parser.add_argument("--data-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "armslength-bench")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    args = parser.parse_args()
    dbs = Databases(args.data_dir, args.pg_url)
    copy = dbs.clone(dbs.target(args.backend, "l10k"), "profile_door")
    try:
        cast = measure.cast_of(copy, date.today())
        st = app_for(copy).extensions["armslength"]
        bodies = [GiftCreate.model_validate(b)
                  for b in measure.gift_bodies(cast, args.gifts + WARM_UP)]
        statements = [0]

        @event.listens_for(st.engine, "before_cursor_execute")
        def _count(*_args):
            statements[0] += 1

        with st.sessions() as session:
            policy = st.policy_for(session)
            session.rollback()
            for body in bodies[:WARM_UP]:
                record_gift(session, body, measure.ACTOR, policy, st.reporting_currency)
            statements[0] = 0
            profiler = Profiler(interval=0.0005)
            profiler.start()
            began = time.perf_counter()
            for body in bodies[WARM_UP:]:
                record_gift(session, body, measure.ACTOR, policy, st.reporting_currency)
            elapsed = time.perf_counter() - began
            profiler.stop()
        st.engine.dispose()
    finally:
        dbs.drop(copy)
    print(f"{args.backend}: {args.gifts / elapsed:.0f} gifts/s under the profiler, "
          f"{statements[0] / args.gifts:.1f} statements per gift")
    out = ROOT / "bench" / "results" / f"door-{args.backend}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(profiler.output_text(unicode=False, show_all=False))
    print(f"profile written to {out}")


if __name__ == "__main__":
    main()

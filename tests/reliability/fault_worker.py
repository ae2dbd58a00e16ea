"""Children for the kill tests (tests/reliability/test_fault_kill.py,
tests/stripe/test_stripe_webhook_kill.py).

Each runs in a process started with the "spawn" context, makes the ledger write it was
given, and stops inside that write's transaction: everything written so far is flushed
to the database (so the rows exist in the open transaction and the ledger lock is
held), then the child says so through `entered` and sleeps until the parent kills it
with SIGKILL. Nothing here ever commits.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

from app import create_app
from app.ledger import audit

#: How long a child waits to be killed before giving up on its own (the parent kills it
#: within seconds; this only bounds a broken run).
PATIENCE_SECONDS = 120


def block_inside(action: str, entered, *, skip: int = 0) -> None:
    """Make the (skip+1)-th audit append of `action` stop the process mid-transaction."""
    original = audit.append
    seen = {"count": 0}

    def append(session, actor, act, *args, **kwargs):
        if act == action:
            if seen["count"] == skip:
                original(session, actor, act, *args, **kwargs)
                session.flush()
                entered.set()
                time.sleep(PATIENCE_SECONDS)
                raise SystemExit("not killed in time")
            seen["count"] += 1
        return original(session, actor, act, *args, **kwargs)

    audit.append = append


def block_after_first_chunk(entered) -> None:
    """Make the gift intake stop the process once its first chunk of gifts is written."""
    original = audit.append_many

    def append_many(session, actor, entries):
        original(session, actor, entries)
        if any(action == "gift.recorded" for action, *_ in entries):
            session.flush()
            entered.set()
            time.sleep(PATIENCE_SECONDS)
            raise SystemExit("not killed in time")

    audit.append_many = append_many


def api_gift_main(config: dict, token: str, body: dict, entered) -> None:
    """POST /api/v1/gifts, stopped after the gift's rows and its audit entry are flushed."""
    app = create_app(config)
    block_inside("gift.recorded", entered)
    app.test_client().post("/api/v1/gifts", json=body,
                           headers={"Authorization": f"Bearer {token}"})


def webhook_main(config: dict, payload: str, signature: str, entered) -> None:
    """POST /stripe/webhook, stopped inside the event's batch once its gift is flushed."""
    app = create_app(config)
    block_inside("gift.recorded", entered)
    app.test_client().post("/stripe/webhook", data=payload, content_type="application/json",
                           headers={"Stripe-Signature": signature})


def import_main(config: dict, directory: str, today: str, skip: int, entered) -> None:
    """A CSV import, stopped in its one transaction once `skip` gifts were written (the
    gift intake writes its gifts in chunks; the first chunk is made `skip` long)."""
    from app.ledger import intake
    from app.ledger.audit import Actor
    from app.ledger.csv_import import KINDS, CsvImport

    app = create_app(config)
    st = app.extensions["armslength"]
    intake.CHUNK = skip
    block_after_first_chunk(entered)
    with st.sessions() as session:
        with CsvImport(session, today=date.fromisoformat(today),
                       reporting_currency=st.reporting_currency) as job:
            for kind in KINDS:
                with (Path(directory) / f"{kind}.csv").open("rb") as stream:
                    job.check(kind, stream)
            assert not job.errors, job.errors
            job.run(Actor("test:import-child", role="admin"), st.policy_for(session),
                    files={kind: f"{kind}.csv" for kind in KINDS})

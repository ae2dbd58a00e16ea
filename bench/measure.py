"""The measurements. Every ratio is measured side by side in one run: the two things being
compared alternate in rounds, so a change in machine load affects both alike."""

from __future__ import annotations

import gc
import random
import re
import statistics
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, insert, select, text
from sqlmodel import Session

import models
from app.db import make_engine
from app.ledger.audit import Actor
from app.ledger.gifts import record_gift
from app.ledger.summary import compliance_summary
from bench.db import STAFF_EMAIL, STAFF_PASSWORD, Databases, Target, app_for
from models import Affiliation, Donor, Organization
from models.schemas import GiftCreate

ACTOR = Actor("bench", role="admin")


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of the values."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


@dataclass
class Cast:
    """Donors of a generated ledger the measurements give as: ordinary people, lab employees
    (affiliation to a covered organisation, still active) and foundations."""

    people: list[int]
    lab_people: list[int]
    foundations: list[int]
    end: date
    #: A person who is no lab employee and bears the ledger's most common name (blocking
    #: key): the most candidates identity matching reads for one donor.
    common_name: int | None = None


def cast_of(target: Target, end: date) -> Cast:
    engine = make_engine(target.url)
    try:
        with engine.connect() as conn:
            covered = set(conn.execute(select(Organization.id).where(
                Organization.name.like("Frontier Lab%"))).scalars())
            lab = sorted(set(conn.execute(select(Affiliation.donor_id).where(
                Affiliation.organization_id.in_(covered), Affiliation.end_date.is_(None),
                Affiliation.senior_decision_maker.is_(False))).scalars()))
            affiliated = set(conn.execute(select(Affiliation.donor_id)).scalars())
            people = [d for d in conn.execute(select(Donor.id).where(
                Donor.type == "person").order_by(Donor.id).limit(5000)).scalars()
                if d not in affiliated]
            foundations = list(conn.execute(select(Donor.id).where(
                Donor.category == "foundation").order_by(Donor.id).limit(50)).scalars())
            common_key = conn.execute(
                select(Donor.name_key_a).where(Donor.type == "person")
                .group_by(Donor.name_key_a).order_by(func.count().desc(), Donor.name_key_a)
                .limit(1)).scalar_one_or_none()
            common = next((d for d in conn.execute(select(Donor.id).where(
                Donor.name_key_a == common_key).order_by(Donor.id)).scalars()
                if d not in affiliated), None)
    finally:
        engine.dispose()
    return Cast(people, lab, foundations, end, common)


def gift_bodies(cast: Cast, n: int, seed: int = 7) -> list[dict]:
    """What arrives on a normal day: mostly individual gifts, some from lab employees."""
    rng = random.Random(seed)
    bodies = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.08:
            donor, amount = rng.choice(cast.lab_people), rng.choice(("25.00", "100.00", "250.00"))
        elif roll < 0.10:
            donor, amount = rng.choice(cast.foundations), "5000.00"
        else:
            donor, amount = rng.choice(cast.people), rng.choice(("10.00", "50.00", "100.00",
                                                                 "250.00", "1000.00"))
        bodies.append({"donor_id": donor, "amount": amount, "currency": "USD",
                       "received_on": cast.end.isoformat(), "method": "card"})
    return bodies


# --- (1) intake: the door vs a bare insert of the same rows ----------------------------------

@dataclass
class IntakeResult:
    backend: str
    ledger: str
    gifts: int
    door_seconds: float
    bare_seconds: float
    statuses: dict = field(default_factory=dict)

    @property
    def door_rate(self) -> float:
        return self.gifts / self.door_seconds

    @property
    def bare_rate(self) -> float:
        return self.gifts / self.bare_seconds

    @property
    def ratio(self) -> float:
        return self.door_seconds / self.bare_seconds


_FUNDING_UPSERT = text(
    "INSERT INTO funding_day (day, total_minor, lab_minor, gift_count) "
    "VALUES (:day, :total, :lab, :count) ON CONFLICT (day) DO UPDATE SET "
    "total_minor = funding_day.total_minor + excluded.total_minor, "
    "lab_minor = funding_day.lab_minor + excluded.lab_minor, "
    "gift_count = funding_day.gift_count + excluded.gift_count")


def _written_rows(session, first_id: int, last_id: int) -> list[dict]:
    """What the door wrote for gifts first_id..last_id: each gift's rows, to insert bare."""
    tables = models.metadata.tables

    def rows(table, where):
        return [dict(r._mapping) for r in session.execute(select(tables[table]).where(where))]

    gifts = rows("gift", tables["gift"].c.id.between(first_id, last_id))
    attributions = rows("attribution", tables["attribution"].c.gift_id.between(first_id, last_id))
    decisions = rows("decision", tables["decision"].c.gift_id.between(first_id, last_id))
    entries = rows("audit_entry", (tables["audit_entry"].c.entity_type == "gift")
                   & tables["audit_entry"].c.entity_id.between(first_id, last_id)
                   & (tables["audit_entry"].c.action == "gift.recorded"))
    by_gift: dict[int, dict] = {g["id"]: {"gift": g, "attributions": [], "decisions": [],
                                          "audit": []} for g in gifts}
    for a in attributions:
        by_gift[a["gift_id"]]["attributions"].append(a)
    for d in decisions:
        by_gift[d["gift_id"]]["decisions"].append(d)
    for e in entries:
        by_gift[e["entity_id"]]["audit"].append(e)
    return [by_gift[i] for i in sorted(by_gift)]


def _bare_insert(conn, item: dict) -> None:
    tables = models.metadata.tables
    gift = item["gift"]
    conn.execute(insert(tables["gift"]), [gift])
    conn.execute(insert(tables["attribution"]), item["attributions"])
    conn.execute(insert(tables["decision"]), item["decisions"])
    if gift["status"] == "accepted" and gift["kind"] == "cash":
        conn.execute(_FUNDING_UPSERT, {"day": gift["received_on"],
                                       "total": gift["reporting_amount_minor"],
                                       "lab": gift["lab_minor"], "count": 1})
    conn.execute(insert(tables["audit_entry"]), item["audit"])


def intake(dbs: Databases, base: Target, cast: Cast, n: int, rounds: int, log) -> IntakeResult:
    """n gifts through record_gift (one transaction each, as the API does) on one copy of
    the ledger, and the very rows it wrote inserted bare (one transaction per gift, no
    screening, no lock) on another copy, alternating in rounds.

    Each gift takes the API's path (app.api.idempotency.recording with routes._prepare_gift):
    its facts about people read before the lock (prepare_gift), then record_gift with them
    inside a ledger_batch of its own, which on PostgreSQL takes the lock in the preparation's
    transaction."""
    from app.db.locking import ledger_batch
    from app.ledger.gifts import prepare_gift

    def door(session, policy, currency, chunk, st):
        recorded = []
        for body in chunk:
            prepared = prepare_gift(session, body, ACTOR, currency, st.policies.current,
                                    policy_at=st.policies.at)
            with ledger_batch(session, growing=False, after_reads=prepared is not None):
                gift = record_gift(session, body, ACTOR,
                                   policy if prepared is None else prepared.policy, currency,
                                   prepared=prepared).gift
            # Ids and statuses only: a gift object kept alive stays in the session, and each
            # later record_gift would expire it again (ledger_write expires everything).
            recorded.append((gift.id, gift.status))
        return recorded

    def bare(engine, written):
        for item in written:
            with engine.begin() as conn:
                _bare_insert(conn, item)

    return _side_by_side(dbs, base, gift_bodies(cast, n), rounds, "intake", door, bare, log)


def _bare_insert_batch(session, written: list[dict]) -> None:
    """The rows of many gifts in one transaction, by the ledger's own bulk write
    (rows.bulk_insert: COPY on PostgreSQL, executemany on SQLite) and the day totals summed
    per day: what GiftIntake writes, without the screening, the lock and the reads."""
    from app.db import rows as ledger_rows

    for table, key in ((models.Gift, "gift"), (models.Attribution, "attributions"),
                       (models.Decision, "decisions"), (models.AuditEntry, "audit")):
        batch = [item[key] for item in written] if key == "gift" else \
            [row for item in written for row in item[key]]
        ledger_rows.bulk_insert(session, table, batch)
    days: dict = {}
    for item in written:
        gift = item["gift"]
        if gift["status"] == "accepted" and gift["kind"] == "cash":
            day = days.setdefault(gift["received_on"], [0, 0, 0])
            day[0] += gift["reporting_amount_minor"]
            day[1] += gift["lab_minor"]
            day[2] += 1
    if days:
        session.execute(_FUNDING_UPSERT, [{"day": d, "total": t, "lab": lab, "count": c}
                                          for d, (t, lab, c) in days.items()])


def batched_intake(dbs: Databases, base: Target, cast: Cast, n: int, rounds: int,
                   log) -> IntakeResult:
    """n gifts through the door in batches (GiftIntake inside ledger_batch: the same checks
    and policy, each gift screened in turn, one transaction per round, as the CSV import
    records its gifts) on one copy of the ledger, and the very rows it wrote inserted bare
    in the same batches on another copy, alternating in rounds."""
    from app.db.locking import ledger_batch
    from app.ledger.intake import GiftIntake

    def door(session, policy, currency, chunk, _st):
        with ledger_batch(session), GiftIntake(session, ACTOR, policy, currency) as batch:
            screened = [batch.record(body) for body in chunk]
        return [(s.gift.id, s.gift.status) for s in screened]

    def bare(engine, written):
        with Session(engine) as session, session.begin():
            _bare_insert_batch(session, written)

    return _side_by_side(dbs, base, gift_bodies(cast, n, seed=8), rounds, "batched intake",
                         door, bare, log)


def _side_by_side(dbs: Databases, base: Target, bodies: list[dict], rounds: int, label: str,
                  door, bare, log) -> IntakeResult:
    """door(session, policy, currency, gifts, app state) records a round's gifts on one copy
    of the ledger and returns their (id, status); bare(engine, rows) inserts the rows the
    door wrote on another copy. Each round is timed both ways, alternately."""
    door_db = dbs.clone(base, f"{base.name}_door")
    bare_db = dbs.clone(base, f"{base.name}_bare")
    st = app_for(door_db).extensions["armslength"]
    bare_engine = make_engine(bare_db.url)
    gifts = [GiftCreate.model_validate(b) for b in bodies]
    per_round = -(-len(gifts) // rounds)
    door_total = bare_total = 0.0
    statuses: dict[str, int] = {}
    try:
        with st.sessions() as session:
            policy = st.policy_for(session)
            session.rollback()
            for start in range(0, len(gifts), per_round):
                began = time.perf_counter()
                recorded = door(session, policy, st.reporting_currency,
                                gifts[start:start + per_round], st)
                door_total += time.perf_counter() - began
                for _id, status in recorded:
                    statuses[status] = statuses.get(status, 0) + 1
                ids = [gift_id for gift_id, _status in recorded]
                written = _written_rows(session, min(ids), max(ids))
                session.rollback()
                began = time.perf_counter()
                bare(bare_engine, written)
                bare_total += time.perf_counter() - began
    finally:
        st.engine.dispose()
        bare_engine.dispose()
        dbs.drop(door_db)
        dbs.drop(bare_db)
    result = IntakeResult(base.backend, base.name, len(gifts), door_total, bare_total, statuses)
    log(f"    {label} {base.label} {base.name}: door {result.door_rate:,.0f}/s, bare "
        f"{result.bare_rate:,.0f}/s, ratio {result.ratio:.2f}x")
    return result


# --- (2)/(3) scaling of one decision and of the summary, and the dashboard -----------------------

@dataclass
class Timings:
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, seconds: float) -> None:
        self.samples.setdefault(key, []).append(seconds)

    def median(self, key: str) -> float:
        return statistics.median(self.samples[key])

    def p95(self, key: str) -> float:
        return pct(self.samples[key], 95)


OPERATIONS = ("decision today", "decision back-dated 200 days",
              "decision today, most common name", "summary today")


def scaling(targets: list[tuple[Target, Cast]], rounds: int, log) -> Timings:
    """One gift decision (record_gift with dry_run: every read and the policy, no write),
    for a lab employee's gift dated today and one dated 200 days ago (which must also be
    checked against every later date with gifts), and the compliance summary as of today.
    Sizes alternate within each round."""
    apps = []
    for target, cast in targets:
        app = app_for(target)
        st = app.extensions["armslength"]
        body = GiftCreate.model_validate({"donor_id": cast.lab_people[0], "amount": "100.00",
                                          "currency": "USD", "received_on": cast.end.isoformat()})
        old = body.model_copy(update={"received_on": cast.end - timedelta(days=200)})
        common = body.model_copy(update={"donor_id": cast.common_name or cast.people[0]})
        apps.append((target, cast, app, st, body, old, common))
    timings = Timings()
    try:
        sessions = [st.sessions() for _, _, _, st, _, _, _ in apps]
        policies = []
        for session, (_, _, _, st, _, _, _) in zip(sessions, apps, strict=True):
            policies.append(st.policy_for(session))
            session.rollback()
        for _ in range(rounds):
            for session, policy, (target, cast, _app, st, body, old, common) in zip(
                    sessions, policies, apps, strict=True):
                key = f"{target.backend}:{target.name}"
                for label, gift in (("decision today", body),
                                    ("decision back-dated 200 days", old),
                                    ("decision today, most common name", common)):
                    began = time.perf_counter()
                    record_gift(session, gift, ACTOR, policy, st.reporting_currency, dry_run=True)
                    timings.add(f"{key}:{label}", time.perf_counter() - began)
                began = time.perf_counter()
                compliance_summary(session, cast.end, policy, st.reporting_currency)
                timings.add(f"{key}:summary today", time.perf_counter() - began)
                session.rollback()
        for session in sessions:
            session.close()
    finally:
        for *_, st, _body, _old, _common in apps:
            st.engine.dispose()
    return timings


_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


#: Staff pages measured beside the dashboard: (key, path). The dashboard's p95 is the budget
#: the others are held to (issue 14: list pages and reports at the 1M ledger).
STAFF_PAGES = (("dashboard", "/staff/compliance"), ("reports", "/staff/reports/"),
               ("donors", "/staff/donors/"), ("gifts", "/staff/gifts/"))


def dashboard(targets: list[Target], requests: int, log,
              pages: tuple[tuple[str, str], ...] = STAFF_PAGES) -> Timings | None:
    """GET each staff page through the Flask test client, signed in as an admin; the pages
    alternate within each round, so they are measured side by side."""
    timings = Timings()
    clients = []
    apps = []
    for target in targets:
        app = app_for(target)
        apps.append(app)
        if "compliance.dashboard" not in app.view_functions:
            log("    /staff/compliance does not exist: skipped")
            return None
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        match = _CSRF.search(page)
        response = client.post("/login", data={"email": STAFF_EMAIL, "password": STAFF_PASSWORD,
                                               "csrf_token": match.group(1) or match.group(2)})
        if response.status_code != 302:
            raise RuntimeError(f"sign-in failed on {target.name}: {response.status_code}")
        for _key, path in pages:
            warm = client.get(path)
            if warm.status_code != 200:
                raise RuntimeError(f"{path} answered {warm.status_code} on {target.name}")
        clients.append((target, client))
    # As app.wsgi does in each served worker: the objects made at startup leave the garbage
    # collector's full collections (each walked them all: pauses of about 90 ms on random
    # requests, seen as the p95 of this page at 1,000,000 gifts).
    gc.freeze()
    try:
        for _ in range(requests):
            for target, client in clients:
                for key, path in pages:
                    began = time.perf_counter()
                    response = client.get(path)
                    elapsed = time.perf_counter() - began
                    assert response.status_code == 200
                    timings.add(f"{target.backend}:{target.name}:{key}", elapsed)
    finally:
        for app in apps:
            app.extensions["armslength"].engine.dispose()
    return timings

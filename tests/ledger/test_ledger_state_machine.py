"""The ledger services driven by hypothesis through random histories, on SQLite and PostgreSQL.

Each run starts from an empty ledger with a covered lab, a lab employee or two, plain
donors and the lab's corporate donor, then applies random steps:

- gifts: a plain donor's, a lab employee's, a joint gift split 50/50 between a lab
  employee and a plain donor (partly lab money), the lab's corporate gift (held);
  each dated today or back-dated up to 400 days;
- refunds, partial or full, dated between the gift and today;
- refund reversals (a refund that failed later), dated between the refund and today;
- a foundation's gift, and a plain donor's gift shared with the foundation;
- an organisation donor's category changing (foundation, company, other);
- a late affiliation (a plain donor turns out to work at the lab, from some date on),
  which re-screens that donor's gifts and holds them for review;
- reviewers' decisions on held gifts (accept / reject), and a second reviewer's
  approval of an override request;
- the window moving: "today" advances (never past the organisation's real today, as the
  door refuses a gift dated after it).

After every step the invariants are checked against an independent recomputation from
the gift and refund tables (plain Python over every row, no shared code with the
ledger's window sums):

- for every date with accepted gifts, and for today, the compliance summary's totals are
  the recomputed window totals, and it reports a breach exactly when the recomputed share
  is not below the cap; while no refund, late affiliation or approved override has
  happened, no date with accepted gifts is in breach at all (gifts alone never break the
  cap, however they are back-dated; today alone may be, as older funding ages out);
- funding_day equals the accepted cash gifts recomputed per day, and funding_mix_day what
  they credit to organisations per day and category (their donors' categories now: a
  step may change a foundation's or the corporate donor's category);
- every gift has a decision, and its latest decision matches its status;
- refunds never exceed a gift, and the gift's refunded amount is their sum;
- the audit chain verifies.

Bounded for CI: a handful of runs of a few dozen steps per backend, no deadline, no
example database.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from fractions import Fraction
from itertools import count

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

import models
from app.auth.users import create_user
from app.db import make_engine, org_today, session_factory
from app.db.locking import ensure_lock_row
from app.errors import NotAllowed
from app.ledger import parties, reviews
from app.ledger.audit import Actor, verify_chain
from app.ledger.gifts import record_gift, refund_gift
from app.ledger.refund_reversals import latest_reversal_day, reverse_refund
from app.ledger.row_verify import verify_rows
from app.ledger.summary import compliance_summary
from models import Decision, FundingDay, Gift, OverrideRequest, Refund
from models.schemas import (
    AffiliationCreate,
    DonorCreate,
    DonorUpdate,
    GiftCreate,
    OrganizationCreate,
    UserCreate,
)
from policies import load_policy

pytestmark = pytest.mark.slow  # long-running: `-m "not slow"` skips it, CI runs it

#: The most days one step moves the machine's "today" on.
MOST_DAYS = 200
POLICY = load_policy()
STATUS_OF = {"accept": "accepted", "hold": "held", "reject": "rejected"}
SYSTEM = Actor("test:machine", role="admin")

RUNS = settings(max_examples=10, stateful_step_count=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                derandomize=False)


# --- a fresh, empty ledger per run --------------------------------------------------------------

class FreshLedger:
    """Gives each hypothesis run an empty database: a copy of an empty SQLite file, or the
    test's PostgreSQL database with every table truncated."""

    def __init__(self, database_url: str, tmp_path):
        self.url = database_url
        self.sqlite = make_url(database_url).get_backend_name() == "sqlite"
        self.runs = count()
        self.tmp_path = tmp_path
        self.engine = None
        if self.sqlite:
            self.template = make_url(database_url).database  # created empty by the fixture
        else:
            self.engine = make_engine(database_url)

    def fresh(self):
        """A session factory on an empty ledger."""
        if self.sqlite:
            if self.engine is not None:
                self.engine.dispose()
            path = self.tmp_path / f"run-{next(self.runs)}.sqlite3"
            shutil.copyfile(self.template, path)
            self.engine = make_engine(f"sqlite:///{path}")
        else:
            tables = ", ".join(f'"{t.name}"' for t in models.metadata.sorted_tables)
            with self.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        sessions = session_factory(self.engine)
        with sessions() as session:
            ensure_lock_row(session)
        return sessions

    def close(self):
        if self.engine is not None:
            self.engine.dispose()


# --- the independent recomputation -----------------------------------------------------------------

def recomputed_window(gifts: list[Gift], refunds: list[Refund], end: date) -> tuple[int, int]:
    """(total, lab) of accepted cash funding in the window ending on `end`, from the rows."""
    start = end - timedelta(days=POLICY.window_days - 1)
    refunded: dict[int, int] = {}
    for r in refunds:
        if r.refunded_on <= end:
            refunded[r.gift_id] = refunded.get(r.gift_id, 0) + r.reporting_amount_minor
    total = lab = 0
    for g in gifts:
        if g.status == "accepted" and g.kind == "cash" and start <= g.received_on <= end:
            back = refunded.get(g.id, 0)
            total += g.reporting_amount_minor - back
            lab_back = back * g.lab_minor // g.reporting_amount_minor if g.reporting_amount_minor else 0
            lab += g.lab_minor - lab_back
    return total, lab


def below(lab: int, total: int) -> bool:
    return lab <= 0 if total <= 0 else Fraction(lab, total) < Fraction(POLICY.cap)


# --- the machine -----------------------------------------------------------------------------

def make_machine(ledger: FreshLedger):
    class LedgerMachine(RuleBasedStateMachine):
        @initialize()
        def cast(self):
            self.sessions = ledger.fresh()
            self.session = self.sessions()
            # The door refuses a gift dated after the organisation's today (ORG_TIMEZONE; a
            # bare session's is UTC), whatever the machine's local zone: the machine's clock
            # starts far enough back that every step may advance it and it never passes that
            # day, and every date it makes (gifts, refunds, affiliation starts) is on or
            # before its own "today".
            self.real_today = org_today(self.session)
            self.today = self.real_today - timedelta(days=RUNS.stateful_step_count * MOST_DAYS)
            #: A refund, a late affiliation or an approved override happened: these may
            #: legitimately put a date in breach. Gifts and reviews alone never do.
            self.breach_possible = False
            s = self.session
            lab = parties.create_organization(s, OrganizationCreate(name="Frontier Lab",
                                                                   covered_lab=True), SYSTEM)
            self.lab_id = lab.id
            self.corporate = parties.create_donor(s, DonorCreate(
                type="organization", name="Frontier Lab (corporate)", organization_id=lab.id,
                category="company"), SYSTEM).id
            self.foundation = parties.create_donor(s, DonorCreate(
                type="organization", name="A Foundation", category="foundation"), SYSTEM).id
            self.lab_people = []
            for name in ("Lee Employee", "Kim Engineer"):
                person = parties.create_donor(s, DonorCreate(type="person", name=name), SYSTEM)
                parties.add_affiliation(s, person.id, AffiliationCreate(
                    organization_id=lab.id, senior_decision_maker=False,
                    start_date=self.today - timedelta(days=4000)), SYSTEM, POLICY)
                self.lab_people.append(person.id)
            self.plain_people = [
                parties.create_donor(s, DonorCreate(type="person", name=f"Plain Donor {i}"),
                                     SYSTEM).id
                for i in range(4)
            ]
            self.reviewers = []
            for i in (1, 2):
                user = create_user(s, UserCreate(email=f"reviewer{i}@example.org", role="reviewer",
                                                 password="long enough password"), SYSTEM)
                self.reviewers.append(Actor(f"test:reviewer{i}", user_id=user.id, role="reviewer"))
            self.gift_ids: list[int] = []
            self.refs = count(1)

        def teardown(self):
            self.session.close()

        # -- helpers -------------------------------------------------------------------------

        def _day(self, back: int) -> date:
            return self.today - timedelta(days=back)

        def _record(self, donor_id: int, cents: int, back: int, **extra) -> None:
            body = {"donor_id": donor_id, "amount": f"{cents // 100}.{cents % 100:02d}",
                    "currency": "USD", "received_on": self._day(back).isoformat(),
                    "external_ref": f"m-{next(self.refs)}", **extra}
            recorded = record_gift(self.session, GiftCreate.model_validate(body), SYSTEM, POLICY,
                                   "USD")
            self.gift_ids.append(recorded.gift.id)

        def _gifts(self, *statuses: str) -> list[Gift]:
            self.session.rollback()
            query = select(Gift).order_by(Gift.id)
            if statuses:
                query = query.where(Gift.status.in_(statuses))
            gifts = list(self.session.execute(query).scalars())
            self.session.rollback()
            return gifts

        # -- gifts ---------------------------------------------------------------------------

        @rule(who=st.integers(0, 3), cents=st.integers(1_00, 2_000_00), back=st.integers(0, 400))
        def plain_gift(self, who, cents, back):
            self._record(self.plain_people[who], cents, back)

        @rule(who=st.integers(0, 1), cents=st.integers(1_00, 2_500_00), back=st.integers(0, 400))
        def lab_employee_gift(self, who, cents, back):
            self._record(self.lab_people[who], cents, back)

        @rule(lab=st.integers(0, 1), plain=st.integers(0, 3), cents=st.integers(1_01, 3_000_01),
              back=st.integers(0, 400))
        def joint_gift(self, lab, plain, cents, back):
            """Half a lab employee's money: the lab part is rounded up, refunds take back
            a rounded-down share of it."""
            payer = self.plain_people[plain]
            self._record(payer, cents, back, attributions=[
                {"donor_id": payer, "fraction": "0.5"},
                {"donor_id": self.lab_people[lab], "fraction": "0.5"},
            ])

        @rule(cents=st.integers(100_00, 5_000_00), back=st.integers(0, 400))
        def held_corporate_gift(self, cents, back):
            self._record(self.corporate, cents, back)

        @rule(cents=st.integers(100_00, 5_000_00), back=st.integers(0, 400))
        def foundation_gift(self, cents, back):
            self._record(self.foundation, cents, back)

        @rule(plain=st.integers(0, 3), cents=st.integers(1_01, 3_000_01), back=st.integers(0, 400))
        def gift_shared_with_the_foundation(self, plain, cents, back):
            payer = self.plain_people[plain]
            self._record(payer, cents, back, attributions=[
                {"donor_id": payer, "fraction": "0.7"},
                {"donor_id": self.foundation, "fraction": "0.3"},
            ])

        @rule(corporate=st.booleans(), category=st.sampled_from(["foundation", "company", "other"]))
        def recategorise(self, corporate, category):
            donor_id = self.corporate if corporate else self.foundation
            donor = self.session.get(models.Donor, donor_id)
            parties.update_donor(self.session, donor_id, DonorUpdate(
                name=donor.name, category=category), SYSTEM)

        # -- refunds -------------------------------------------------------------------------

        @precondition(lambda self: self.gift_ids)
        @rule(pick=st.integers(0, 10_000), percent=st.integers(1, 100), after=st.integers(0, 400))
        def refund(self, pick, percent, after, among=None):
            gifts = among or [g for g in self._gifts("accepted", "held", "rejected")
                              if g.refunded_minor < g.amount_minor]
            if not gifts:
                return
            gift = gifts[pick % len(gifts)]
            remaining = gift.amount_minor - gift.refunded_minor
            amount = max(1, remaining * percent // 100)
            on = min(gift.received_on + timedelta(days=after), self.today)
            # Never before a reversal of one of its refunds: the ledger refuses that date.
            on = max(on, latest_reversal_day(self.session, gift.id) or on)
            self.session.rollback()
            refund_gift(self.session, gift.id, SYSTEM, amount_minor=amount, refunded_on=on,
                        reason="hypothesis")
            self.breach_possible = True

        @precondition(lambda self: self.gift_ids)
        @rule(pick=st.integers(0, 10_000), percent=st.integers(1, 99), after=st.integers(0, 60))
        def refund_partly_lab_gift(self, pick, percent, after):
            """A refund of a gift that is partly lab money: the lab part it takes back is
            rounded down, per gift, over all its refunds (the one case where a window's
            lab money is not a plain sum)."""
            gifts = [g for g in self._gifts("accepted")
                     if 0 < g.lab_minor < g.reporting_amount_minor
                     and g.refunded_minor < g.amount_minor]
            if gifts:
                self.refund(pick, percent, after, among=gifts)

        @precondition(lambda self: self.gift_ids)
        @rule(pick=st.integers(0, 10_000), after=st.integers(0, 400))
        def reverse_a_refund(self, pick, after):
            """A refund fails later (Stripe): the money came back, counted again from the
            reversal's date on."""
            self.session.rollback()
            reversed_ids = select(Refund.reverses_refund_id).where(
                Refund.reverses_refund_id.is_not(None))
            refunds = list(self.session.execute(
                select(Refund).where(Refund.reverses_refund_id.is_(None),
                                     Refund.id.not_in(reversed_ids))
                .order_by(Refund.id)).scalars())
            self.session.rollback()
            if not refunds:
                return
            refund = refunds[pick % len(refunds)]
            on = min(refund.refunded_on + timedelta(days=after), self.today)
            reverse_refund(self.session, refund.id, SYSTEM, reversed_on=on,
                           reason="hypothesis: the refund failed", policy=POLICY)
            self.breach_possible = True

        # -- facts change --------------------------------------------------------------------

        @rule(who=st.integers(0, 3), start_back=st.integers(0, 800),
              length=st.one_of(st.none(), st.integers(0, 500)), senior=st.booleans())
        def late_affiliation(self, who, start_back, length, senior):
            donor_id = self.plain_people[who]
            start = self._day(start_back)
            end = None if length is None else start + timedelta(days=length)
            parties.add_affiliation(self.session, donor_id, AffiliationCreate(
                organization_id=self.lab_id, senior_decision_maker=senior, start_date=start,
                end_date=end, title="Found out later"), SYSTEM, POLICY)
            self.breach_possible = True

        # -- reviewers -----------------------------------------------------------------------

        @precondition(lambda self: self.gift_ids)
        @rule(pick=st.integers(0, 10_000), outcome=st.sampled_from(["accept", "reject"]),
              who=st.integers(0, 1))
        def review_held(self, pick, outcome, who):
            held = self._gifts("held")
            if not held:
                return
            gift = held[pick % len(held)]
            try:
                reviews.decide_held(self.session, gift.id, outcome, "reviewed by hypothesis",
                                    self.reviewers[who], POLICY)
            except NotAllowed:
                pass  # an override of this gift is already waiting

        @precondition(lambda self: self.gift_ids)
        @rule(pick=st.integers(0, 10_000))
        def approve_override(self, pick):
            self.session.rollback()
            waiting = list(self.session.execute(
                select(OverrideRequest).where(OverrideRequest.state == "pending")
                .order_by(OverrideRequest.id)).scalars())
            self.session.rollback()
            if not waiting:
                return
            request = waiting[pick % len(waiting)]
            second = next(r for r in self.reviewers if r.user_id != request.requested_by_id)
            try:
                reviews.approve_override(self.session, request.id, second, POLICY)
            except NotAllowed:
                return
            self.breach_possible = True

        # -- time ----------------------------------------------------------------------------

        @rule(days=st.integers(1, MOST_DAYS))
        def advance_today(self, days):
            self.today = min(self.today + timedelta(days=days), self.real_today)

        # -- invariants ----------------------------------------------------------------------

        @invariant()
        def ledger_is_consistent(self):
            if not hasattr(self, "session"):
                return
            s = self.session
            s.rollback()
            gifts = list(s.execute(select(Gift).order_by(Gift.id)).scalars())
            refunds = list(s.execute(select(Refund).order_by(Refund.id)).scalars())

            # funding_day is the accepted cash gifts, day by day.
            expected: dict[date, tuple[int, int, int]] = {}
            for g in gifts:
                if g.status == "accepted" and g.kind == "cash":
                    t, lab, n = expected.get(g.received_on, (0, 0, 0))
                    expected[g.received_on] = (t + g.reporting_amount_minor, lab + g.lab_minor, n + 1)
            stored = {d.day: (d.total_minor, d.lab_minor, d.gift_count)
                      for d in s.execute(select(FundingDay)).scalars() if d.gift_count or
                      d.total_minor or d.lab_minor}
            assert stored == expected

            # funding_mix_day is what those gifts credit to organisations, by category now.
            categories = dict(s.execute(select(models.Donor.id, models.Donor.category)).all())
            counted = {g.id: g for g in gifts if g.status == "accepted" and g.kind == "cash"}
            credited: dict[tuple[date, str], int] = {}
            for a in s.execute(select(models.Attribution)).scalars():
                category = categories[a.donor_id]
                if a.gift_id in counted and category != "individual":
                    g = counted[a.gift_id]
                    key = (g.received_on, category)
                    credited[key] = credited.get(key, 0) + g.reporting_amount_minor * a.fraction_ppm
            kept = {(m.day, m.category): m.credited_ppm
                    for m in s.execute(select(models.FundingMixDay)).scalars() if m.credited_ppm}
            assert kept == {key: value for key, value in credited.items() if value}

            # The share at every decision point (and today) as the summary reports it.
            decision_points = {g.received_on for g in gifts
                               if g.status == "accepted" and g.kind == "cash"}
            for day in sorted(decision_points | {self.today}):
                total, lab = recomputed_window(gifts, refunds, day)
                summary = compliance_summary(s, day, POLICY, "USD")
                assert (summary.total_minor, summary.lab_minor) == (total, lab), day
                assert summary.in_breach == (not below(lab, total)), day
                if not self.breach_possible and day in decision_points:
                    # Today may be in breach as older funding ages out of the window (the
                    # domain's "window moving on"); a date with accepted gifts may not.
                    assert not summary.in_breach, f"the cap broke on {day} with gifts alone"

            # Decisions: at least one per gift; the latest matches the status.
            latest: dict[int, Decision] = {}
            for d in s.execute(select(Decision).order_by(Decision.id)).scalars():
                latest[d.gift_id] = d
            for g in gifts:
                assert g.id in latest, f"gift {g.id} has no decision"
                assert STATUS_OF[latest[g.id].outcome] == g.status, (g.id, g.status)

            # Refunds add up.
            by_gift: dict[int, int] = {}
            for r in refunds:
                by_gift[r.gift_id] = by_gift.get(r.gift_id, 0) + r.amount_minor
            for g in gifts:
                assert g.refunded_minor == by_gift.get(g.id, 0) <= g.amount_minor

            report = verify_chain(s)
            assert report.ok, report
            # Every row the history wrote or changed is sealed as it now stands.
            rows = verify_rows(s)
            assert rows.ok, [str(f) for f in rows.findings]
            s.rollback()

    LedgerMachine.TestCase.settings = RUNS
    return LedgerMachine


def test_random_histories_keep_the_ledger_consistent(database_url, tmp_path):
    ledger = FreshLedger(database_url, tmp_path)
    try:
        run_state_machine_as_test(make_machine(ledger), settings=RUNS)
    finally:
        ledger.close()

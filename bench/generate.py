"""A realistic ledger of any size, written in bulk (executemany on SQLite, COPY on PostgreSQL).

Going through the one door (app.ledger.gifts.record_gift) a million times would take hours,
so the generator does what the door does, in memory, and writes the resulting rows in
bulk:

- the cast: covered labs and their affiliates (a lab's foundation, a subsidiary),
  companies, foundations, donor-advised-fund sponsors; people, about 7% of them lab
  employees (some of whose affiliations ended, some inside the cooling-off period), a few
  senior decision-makers, many employees of ordinary companies;
- gifts over several years in date order: individual gifts, foundation and company
  grants, DAF grants attributed to their advisor, joint gifts split 50/50, employer
  matching gifts, lab corporate gifts (held; half are then accepted by a reviewer), lab
  payments for evaluations (rejected), lab in-kind support (disclosed), a few EUR and GBP
  gifts converted at a stored rate;
- every gift is decided by the real policy engine (policies.evaluate) with the real
  facts types, against window totals kept in memory exactly as app.ledger.windows
  computes them from funding_day and refunds; so decisions, lab parts and statuses are
  the ones the door would have produced for gifts recorded in date order;
- refunds (about 1% of accepted cash gifts, full or partial, dated after the gift) are
  applied to the in-memory windows on their date, as the door's window sums do;
- one decision per gift (two for a reviewed one), one attribution per share, one
  funding_day row per day with accepted cash gifts (gross totals, lab part, count), and
  an audit entry per organisation, donor, affiliation, gift, review and refund, chained
  with app.ledger.audit.entry_hash and carrying the row hashes the app would record
  (app.ledger.row_hashes), so verify_chain() and verify_rows() accept the result.

The same seed always produces the same ledger.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace

from app.ledger.audit import _jsonable, entry_hash
from app.ledger.identity import donor_keys
from app.ledger.row_hashes import SEALED, seals_of_values
from bench.names import names
from models import (
    GENESIS_HASH,
    Affiliation,
    Attribution,
    Decision,
    Donor,
    Gift,
    Organization,
    Refund,
)
from models.money import convert, format_amount
from policies import (
    AffiliationFact,
    FundingFacts,
    GiftFacts,
    Party,
    Policy,
    WindowTotals,
    evaluate,
    lab_employee_minor,
)

PPM = 1_000_000
ACTOR = "bench:generator"
RATES = {"EUR": "1.08", "GBP": "1.27"}

#: Tables in the order their rows may be inserted (foreign keys point backwards).
TABLES = ("organization", "donor", "affiliation", "gift", "attribution", "decision", "refund",
          "audit_entry")


def seals(model, row: dict) -> list[list]:
    """The row's seals as the app records them (a donor has a keyed one besides, made with
    the development key, as a bench process has no other). A column the generator leaves
    out gets its constant default in the database, as both writers (bench.db's COPY, and
    INSERT) give it, else NULL: the same here."""
    table = model.__table__.c
    columns = {c for s in SEALED.values() if s.model is model for c in s.columns}
    return seals_of_values(model, {c: row[c] if c in row else _default(table[c])
                                   for c in columns})


def _default(column):
    default = column.default
    return default.arg if default is not None and default.is_scalar else None


def seal_values(model, row: dict) -> list:
    """The seal of a row of a model with one seal."""
    [one] = seals(model, row)
    return one


@dataclass(frozen=True)
class LedgerSpec:
    gifts: int
    end: date
    years: int = 5
    seed: int = 20261126
    #: People donors, if not the default gifts // 5 (bench.identity: 200,000 people with
    #: 100,000 gifts, the gifts then repeated tenfold).
    people_count: int | None = None

    @property
    def start(self) -> date:
        return self.end - timedelta(days=365 * self.years - 1)

    @property
    def people(self) -> int:
        """People donors: 200,000 at 1,000,000 gifts (issue 11's identity-matching figure)."""
        return self.people_count or max(300, self.gifts // 5)


@dataclass
class Stats:
    gifts: int = 0
    accepted: int = 0
    held: int = 0
    rejected: int = 0
    refunds: int = 0
    decisions: int = 0
    attributions: int = 0
    audit_entries: int = 0
    donors: int = 0
    people: int = 0
    lab_employees: int = 0
    affiliations: int = 0
    organizations: int = 0
    funding_days: int = 0
    in_kind: int = 0
    daf_grants: int = 0


class _Chain:
    def __init__(self):
        self.prev = GENESIS_HASH
        self.next_id = 1

    def entry(self, at: datetime, action: str, entity_type: str, entity_id: int | None,
              data: dict, sealed: list[list]) -> dict:
        data = _jsonable(data)
        row = SimpleNamespace(at=at, actor=ACTOR, actor_id=None, action=action,
                              entity_type=entity_type, entity_id=entity_id, data=data,
                              row_hashes=sealed)
        digest = entry_hash(self.prev, row)
        out = {"id": self.next_id, "at": at, "actor_id": None, "actor": ACTOR, "action": action,
               "entity_type": entity_type, "entity_id": entity_id, "data": data,
               "row_hashes": sealed, "prev_hash": self.prev, "hash": digest}
        self.prev = digest
        self.next_id += 1
        return out


class _Windows:
    """Accepted cash funding per day, net of refunds applied so far, and the running sums
    of the trailing window: what app.ledger.windows.window_totals returns for the window
    ending on the current day, given that nothing later than today is recorded yet."""

    def __init__(self, start: date, days: int, window_days: int):
        self.start = start
        self.window = window_days
        self.net_total = [0] * days
        self.net_lab = [0] * days
        self.gross_total = [0] * days
        self.gross_lab = [0] * days
        self.count = [0] * days
        self.today = -1
        self.sum_total = 0
        self.sum_lab = 0

    def advance(self, index: int) -> None:
        while self.today < index:
            self.today += 1
            leaving = self.today - self.window
            if leaving >= 0:
                self.sum_total -= self.net_total[leaving]
                self.sum_lab -= self.net_lab[leaving]

    def totals(self) -> WindowTotals:
        return WindowTotals(self.start + timedelta(days=self.today), self.sum_total, self.sum_lab)

    def count_gift(self, index: int, total: int, lab: int) -> None:
        self.net_total[index] += total
        self.net_lab[index] += lab
        self.gross_total[index] += total
        self.gross_lab[index] += lab
        self.count[index] += 1
        if self.today - self.window < index <= self.today:
            self.sum_total += total
            self.sum_lab += lab

    def refund(self, index: int, total: int, lab: int) -> None:
        self.net_total[index] -= total
        self.net_lab[index] -= lab
        if self.today - self.window < index <= self.today:
            self.sum_total -= total
            self.sum_lab -= lab


def _instant(day: date, seconds: int) -> datetime:
    return datetime.combine(day, time(9, 0), UTC) + timedelta(seconds=seconds % 30000,
                                                                microseconds=seconds % 997)


class Generator:
    """generate() yields (table, rows) batches; funding_days() afterwards gives the daily totals."""

    def __init__(self, spec: LedgerSpec, policy: Policy, reporting_currency: str = "USD",
                 batch: int = 20_000):
        self.spec = spec
        self.policy = policy
        self.currency = reporting_currency
        self.batch = batch
        self.rng = random.Random(spec.seed)
        self.chain = _Chain()
        self.stats = Stats()
        self.days = (spec.end - spec.start).days + 1
        self.windows = _Windows(spec.start, self.days, policy.window_days)
        self._buffers: dict[str, list[dict]] = {t: [] for t in TABLES}
        self._parties: dict[tuple[int, Fraction], Party] = {}
        # The cast, filled by _cast().
        self.orgs: dict[int, dict] = {}
        self.covered: set[int] = set()
        self.donors: dict[int, dict] = {}
        self.affiliations: dict[int, list[dict]] = {}
        #: People whose affiliation to a covered organisation counts on the ledger's last day.
        self.lab_people: list[int] = []
        self.seniors: list[int] = []
        self.ordinary_people: list[int] = []
        self.companies: list[int] = []
        self.foundations: list[int] = []
        self.daf_sponsors: list[int] = []
        self.lab_donors: list[int] = []
        #: (gift id, refunded_minor) of refunded gifts, applied with one UPDATE after the load.
        self.refunded: list[dict] = []
        #: Window totals (total, lab) the generator saw at the end of some days, for checking
        #: that the database's window sums (app.ledger.windows) agree.
        self.samples: dict[str, tuple[int, int]] = {}

    # -- output -----------------------------------------------------------------------------

    def _emit(self, table: str, row: dict) -> None:
        self._buffers[table].append(row)

    def _flush(self, force: bool = False) -> Iterator[tuple[str, list[dict]]]:
        if force or sum(len(rows) for rows in self._buffers.values()) >= self.batch:
            for table in TABLES:
                if self._buffers[table]:
                    yield table, self._buffers[table]
                    self._buffers[table] = []

    def _audit(self, at: datetime, action: str, entity_type: str, entity_id: int | None,
               data: dict, sealed: list[list]) -> None:
        """An audit entry with the seals (app.ledger.row_hashes) of the rows it wrote, as the
        app's own entry would carry them."""
        self._emit("audit_entry", self.chain.entry(at, action, entity_type, entity_id, data,
                                                   sealed))
        self.stats.audit_entries += 1

    # -- the cast ---------------------------------------------------------------------------

    def _org(self, name: str, covered: bool = False, parent: int | None = None) -> int:
        org_id = len(self.orgs) + 1
        at = _instant(self.spec.start - timedelta(days=30), org_id)
        row = {"id": org_id, "name": name, "covered_lab": covered, "aliases": [],
               "parent_id": parent, "created_at": at}
        self.orgs[org_id] = row
        if covered or (parent is not None and parent in self.covered):
            self.covered.add(org_id)
        self._emit("organization", row)
        self._audit(at, "organization.created", "organization", org_id,
                    {"name": name, "covered_lab": covered, "aliases": [], "parent_id": parent},
                    [seal_values(Organization, row)])
        self.stats.organizations += 1
        return org_id

    def _donor(self, kind: str, name: str, category: str, organization_id: int | None = None) -> int:
        donor_id = len(self.donors) + 1
        at = _instant(self.spec.start - timedelta(days=20), donor_id)
        email = f"donor{donor_id}@example.org" if kind == "person" else None
        row = {"id": donor_id, "type": kind, "name": name, "email": email,
               "organization_id": organization_id, "category": category,
               "anonymous": donor_id % 50 == 0, "created_at": at,
               **donor_keys(name, email, None)}
        self.donors[donor_id] = row
        self._emit("donor", row)
        self._audit(at, "donor.created", "donor", donor_id, {"type": kind, "category": category},
                    seals(Donor, row))
        self.stats.donors += 1
        return donor_id

    def _affiliation(self, donor_id: int, org_id: int, *, senior: bool, start: date,
                     end: date | None, title: str) -> None:
        aff_id = self.stats.affiliations + 1
        at = _instant(self.spec.start - timedelta(days=10), aff_id)
        row = {"id": aff_id, "donor_id": donor_id, "organization_id": org_id, "kind": "employee",
               "title": title, "senior_decision_maker": senior, "start_date": start,
               "end_date": end, "created_at": at}
        self.affiliations.setdefault(donor_id, []).append(row)
        self._emit("affiliation", row)
        self._audit(at, "affiliation.added", "donor", donor_id, {
            "affiliation_id": aff_id, "organization_id": org_id, "kind": "employee",
            "title": title, "senior_decision_maker": senior, "start_date": start,
            "end_date": end,
        }, [seal_values(Affiliation, row)])
        self.stats.affiliations += 1

    def _cast(self) -> None:
        rng, spec = self.rng, self.spec
        labs = [self._org(f"Frontier Lab {i}", covered=True) for i in range(1, 7)]
        for i, lab in enumerate(labs, start=1):
            self._org(f"Frontier Lab {i} Foundation", parent=lab)
        self.lab_donors = [self._donor("organization", f"Frontier Lab {i} (corporate)", "company",
                                       lab) for i, lab in enumerate(labs, start=1)]
        covered = sorted(self.covered)
        n_companies = max(20, spec.people // 100)
        n_foundations = max(10, spec.people // 200)
        company_orgs = [self._org(f"Company {i}") for i in range(1, n_companies + 1)]
        self.companies = [self._donor("organization", f"Company {i}", "company", org)
                          for i, org in enumerate(company_orgs, start=1)]
        self.foundations = [self._donor("organization", f"Foundation {i}", "foundation",
                                        self._org(f"Foundation {i}"))
                            for i in range(1, n_foundations + 1)]
        self.daf_sponsors = [self._donor("organization", f"Giving Fund {i}", "daf_sponsor")
                             for i in range(1, 11)]
        far_past = spec.start - timedelta(days=3 * 365)
        person_names = names(random.Random(spec.seed + 1))
        for _ in range(1, spec.people + 1):
            person = self._donor("person", next(person_names), "individual")
            self.stats.people += 1
            roll = rng.random()
            if roll < 0.003:
                self._affiliation(person, rng.choice(labs), senior=True, start=far_past,
                                  end=None, title="Chief Scientist")
                self.seniors.append(person)
            elif roll < 0.073:
                org = rng.choice(covered)
                start = spec.start - timedelta(days=rng.randrange(0, 4 * 365))
                end = None
                if rng.random() < 0.2:
                    end = spec.end - timedelta(days=rng.randrange(30, 3 * 365))
                    if end < start:
                        end = start + timedelta(days=200)
                self._affiliation(person, org, senior=False, start=start, end=end,
                                  title="Research engineer")
                self.lab_people.append(person)
                self.stats.lab_employees += 1
            else:
                if rng.random() < 0.3:
                    self._affiliation(person, rng.choice(company_orgs), senior=False,
                                      start=far_past, end=None, title="Staff")
                self.ordinary_people.append(person)

    # -- the policy's facts -----------------------------------------------------------------

    def party(self, donor_id: int, fraction: Fraction = Fraction(1)) -> Party:
        key = (donor_id, fraction)
        if key not in self._parties:
            donor = self.donors[donor_id]
            org_id = donor["organization_id"]
            affiliations = tuple(
                AffiliationFact(
                    organization=self.orgs[a["organization_id"]]["name"],
                    covered=a["organization_id"] in self.covered, kind=a["kind"],
                    title=a["title"], senior_decision_maker=a["senior_decision_maker"],
                    start_date=a["start_date"], end_date=a["end_date"],
                )
                for a in self.affiliations.get(donor_id, ())
            ) if donor["type"] == "person" else ()
            self._parties[key] = Party(
                donor_id=donor_id, name=donor["name"], type=donor["type"], fraction=fraction,
                organization=self.orgs[org_id]["name"] if org_id else None,
                organization_covered=org_id in self.covered if org_id else False,
                affiliations=affiliations,
            )
        return self._parties[key]

    # -- gifts ------------------------------------------------------------------------------

    def _amount(self) -> int:
        """An individual gift in major units: mostly small, a long tail of large ones."""
        return self.rng.choices((10, 25, 50, 100, 250, 500, 1000, 2500, 10000),
                                weights=(8, 20, 22, 20, 12, 8, 6, 3, 1))[0]

    def _person(self) -> int:
        rng = self.rng
        roll = rng.random()
        if roll < 0.08 and self.lab_people:
            return rng.choice(self.lab_people)
        if roll < 0.0805 and self.seniors:
            return rng.choice(self.seniors)
        # A few donors give often (monthly givers): a skewed pick.
        people = self.ordinary_people
        return people[min(len(people) - 1, int(len(people) * rng.random() ** 1.6))]

    def _gift_shape(self, gift_id: int, recent: list[tuple[int, int]]) -> dict:
        """Who gives what: donor, amount, currency, kind, purpose, shares, links."""
        rng = self.rng
        roll = rng.random()
        shape = {"kind": "cash", "purpose": "general", "currency": self.currency,
                 "matching": None, "method": "card", "description": None}
        if roll < 0.05:
            donor = rng.choice(self.foundations)
            shape.update(donor=donor, major=rng.choice((5000, 20000, 50000, 100000, 250000)),
                         shares=[(donor, PPM, "donor")], method="wire")
        elif roll < 0.08:
            donor = rng.choice(self.companies)
            shape.update(donor=donor, major=rng.choice((1000, 5000, 10000)),
                         shares=[(donor, PPM, "donor")], method="check")
        elif roll < 0.11:
            donor = rng.choice(self.daf_sponsors)
            advisor = self._person()
            shape.update(donor=donor, major=self._amount() * 4,
                         shares=[(advisor, PPM, "daf_advisor")], method="check")
            self.stats.daf_grants += 1
        elif roll < 0.125:
            donor, other = self._person(), self._person()
            if other == donor:
                other = rng.choice(self.ordinary_people)
            shares = [(donor, PPM // 2, "explicit"), (other, PPM // 2, "explicit")]
            if other == donor:
                shares = [(donor, PPM, "donor")]
            shape.update(donor=donor, major=self._amount() * 2, shares=shares)
        elif roll < 0.13 and recent:
            matched, major = rng.choice(recent)
            donor = rng.choice(self.companies)
            shape.update(donor=donor, major=major, shares=[(donor, PPM, "employer_match")],
                         matching=matched, method="check")
        elif roll < 0.133:
            donor = rng.choice(self.lab_donors)
            shape.update(donor=donor, major=rng.choice((25000, 50000, 100000)),
                         shares=[(donor, PPM, "donor")], method="wire")
        elif roll < 0.134:
            donor = rng.choice(self.lab_donors)
            shape.update(donor=donor, major=rng.choice((50000, 150000)),
                         shares=[(donor, PPM, "donor")], method="wire",
                         purpose="evaluation_services")
        elif roll < 0.139:
            donor = rng.choice(self.lab_donors)
            shape.update(donor=donor, major=rng.choice((10000, 50000, 200000)),
                         shares=[(donor, PPM, "donor")], kind="in_kind", method="other",
                         description="Model access and API credits for evaluations")
        else:
            donor = self._person()
            shape.update(donor=donor, major=self._amount(), shares=[(donor, PPM, "donor")])
        if shape["kind"] == "cash" and rng.random() < 0.07:
            shape["currency"] = rng.choice(("EUR", "GBP"))
        return shape

    def _record(self, gift_id: int, day: date, index: int, shape: dict, seq: int) -> dict:
        spec_currency = self.currency
        currency = shape["currency"]
        amount_minor = shape["major"] * 100
        if currency == spec_currency:
            rate, source, reporting = "1", "identity", amount_minor
        else:
            rate, source = RATES[currency], "bench fixed rate"
            reporting = convert(amount_minor, currency, Decimal(rate), spec_currency)
        donor_id = shape["donor"]
        facts = GiftFacts(
            received_on=day, amount_minor=reporting, currency=spec_currency,
            kind=shape["kind"], purpose=shape["purpose"], payer=self.party(donor_id),
            attributions=tuple(self.party(d, Fraction(ppm, PPM)) for d, ppm, _ in shape["shares"]),
            is_matching_gift=shape["matching"] is not None,
        )
        evaluation = evaluate(self.policy, facts, FundingFacts((self.windows.totals(),)))
        lab = lab_employee_minor(facts, self.policy.cooling_off_days)
        status = {"accept": "accepted", "hold": "held", "reject": "rejected"}[evaluation.outcome]
        at = _instant(day, seq)
        gift = {
            "id": gift_id, "donor_id": donor_id, "amount_minor": amount_minor, "currency": currency,
            "reporting_amount_minor": reporting, "reporting_currency": spec_currency,
            "fx_rate": rate, "fx_source": source, "received_on": day, "method": shape["method"],
            "kind": shape["kind"], "purpose": shape["purpose"], "description": shape["description"],
            "status": status, "refunded_minor": 0, "lab_minor": lab,
            "disclose": evaluation.disclose, "pledge_id": None,
            "matching_gift_for_id": shape["matching"], "external_ref": f"gen-{gift_id}",
            "stripe_payment_intent_id": None, "stripe_checkout_session_id": None,
            "stripe_invoice_id": None, "created_at": at, "created_by_id": None,
        }
        sealed = [seal_values(Gift, gift)]
        for d, ppm, basis in shape["shares"]:
            self.stats.attributions += 1
            attribution = {"id": self.stats.attributions, "gift_id": gift_id, "donor_id": d,
                           "fraction_ppm": ppm, "basis": basis}
            self._emit("attribution", attribution)
            sealed.append(seal_values(Attribution, attribution))
        decision = self._decision(gift_id, evaluation.outcome, evaluation, "screening", None, at)
        decision_id = decision["id"]
        self._audit(at, "gift.recorded", "gift", gift_id, {
            "donor_id": donor_id, "amount": format_amount(amount_minor, currency),
            "currency": currency, "received_on": day, "status": status,
            "decision_id": decision_id, "policy_version": evaluation.policy_version,
        }, [sealed[0], seal_values(Decision, decision), *sealed[1:]])
        if status == "held" and self.rng.random() < 0.5:
            # A reviewer accepts the lab's general gift the same day, with a reason.
            reason = "Reviewed: unrestricted general support, disclosed; no evaluation tie."
            review_at = at + timedelta(minutes=30)
            review = self._decision(gift_id, "accept", evaluation, "review", reason, review_at)
            status = gift["status"] = "accepted"
            self._audit(review_at, "gift.reviewed", "gift", gift_id, {
                "outcome": "accept", "reason": reason, "decision_id": review["id"],
                "policy_outcome": evaluation.outcome,
            }, [seal_values(Gift, gift), seal_values(Decision, review)])
        if status == "accepted" and gift["kind"] == "cash":
            self.windows.count_gift(index, reporting, lab)
        setattr(self.stats, status, getattr(self.stats, status) + 1)
        if gift["kind"] == "in_kind":
            self.stats.in_kind += 1
        self._emit("gift", gift)
        self.stats.gifts += 1
        return gift

    def _decision(self, gift_id: int, outcome: str, evaluation, kind: str, note: str | None,
                  at: datetime) -> dict:
        self.stats.decisions += 1
        row = {
            "id": self.stats.decisions, "gift_id": gift_id, "outcome": outcome, "kind": kind,
            "policy_version": evaluation.policy_version, "reasons": evaluation.reasons(),
            "figures": evaluation.figures, "note": note, "public_note": None,
            "decided_by_id": None, "approved_by_id": None, "created_at": at,
        }
        self._emit("decision", row)
        return row

    def _refund(self, gift: dict, day: date, seq: int) -> None:
        """Refund a gift (in full, or half of it) on `day`, as refund_gift does."""
        amount = gift["amount_minor"] if self.rng.random() < 0.7 else gift["amount_minor"] // 2
        if amount <= 0:
            return
        if amount == gift["amount_minor"]:
            reporting = gift["reporting_amount_minor"]
        else:
            reporting = gift["reporting_amount_minor"] * amount // gift["amount_minor"]
        # The gift row may already be written: its refunded_minor is set after the load.
        self.refunded.append({"gift_id": gift["id"], "refunded_minor": amount})
        self.stats.refunds += 1
        refund_id = self.stats.refunds
        at = _instant(day, seq)
        refund = {
            "id": refund_id, "gift_id": gift["id"], "amount_minor": amount,
            "reporting_amount_minor": reporting, "refunded_on": day,
            "gift_received_on": gift["received_on"], "reason": "Donor asked for a refund",
            "stripe_refund_id": None, "reverses_refund_id": None, "created_at": at,
            "created_by_id": None,
        }
        self._emit("refund", refund)
        self._audit(at, "gift.refunded", "gift", gift["id"], {
            "refund_id": refund_id, "amount": format_amount(amount, gift["currency"]),
            "currency": gift["currency"], "refunded_on": day, "reason": "Donor asked for a refund",
        }, [seal_values(Gift, {**gift, "refunded_minor": amount}), seal_values(Refund, refund)])
        total = gift["reporting_amount_minor"]
        lab = reporting * gift["lab_minor"] // total if total else 0
        index = (gift["received_on"] - self.spec.start).days
        self.windows.refund(index, reporting, lab)

    def generate(self) -> Iterator[tuple[str, list[dict]]]:
        spec, rng = self.spec, self.rng
        self._cast()
        yield from self._flush(force=True)
        # Gifts per day: a steady base with December and late-June peaks.
        weights = []
        for i in range(self.days):
            day = spec.start + timedelta(days=i)
            w = 1.0 + (2.5 if day.month == 12 and day.day >= 15 else 0.0)
            w += 0.8 if day.month == 6 and day.day >= 20 else 0.0
            weights.append(w)
        scale = spec.gifts / sum(weights)
        counts = [int(w * scale) for w in weights]
        short = spec.gifts - sum(counts)
        for i in range(short):
            counts[(i * 7919) % self.days] += 1
        refunds_due: dict[int, list[dict]] = {}
        recent: list[tuple[int, int]] = []
        gift_id = 0
        seq = 0
        for index in range(self.days):
            day = spec.start + timedelta(days=index)
            self.windows.advance(index)
            for gift in refunds_due.pop(index, ()):  # refunds dated today, before today's gifts
                seq += 1
                self._refund(gift, day, seq)
            pending_rows = []
            for _ in range(counts[index]):
                gift_id += 1
                seq += 1
                shape = self._gift_shape(gift_id, recent)
                gift = self._record(gift_id, day, index, shape, seq)
                pending_rows.append(gift)
                if gift["status"] == "accepted" and gift["kind"] == "cash":
                    if self.donors[gift["donor_id"]]["type"] == "person":
                        recent.append((gift_id, shape["major"]))
                        if len(recent) > 500:
                            recent = recent[-250:]
                    if rng.random() < 0.01:
                        when = index + rng.randrange(1, 91)
                        if when < self.days:
                            refunds_due.setdefault(when, []).append(gift)
            if index % 61 == 0 or index == self.days - 1:
                totals = self.windows.totals()
                self.samples[day.isoformat()] = (totals.total_minor, totals.lab_minor)
            yield from self._flush()
        yield from self._flush(force=True)

    def funding_days(self) -> list[dict]:
        """The daily totals of accepted cash funding, gross and refunded."""
        rows = []
        for i in range(self.days):
            if self.windows.count[i]:
                rows.append({"day": self.spec.start + timedelta(days=i),
                             "total_minor": self.windows.gross_total[i],
                             "lab_minor": self.windows.gross_lab[i],
                             "gift_count": self.windows.count[i],
                             # What the day's gifts have had refunded (all refunds are in
                             # the past when the load ends), as funding.deduct_refund keeps it.
                             "refunded_minor": self.windows.gross_total[i]
                             - self.windows.net_total[i],
                             "refunded_lab_minor": self.windows.gross_lab[i]
                             - self.windows.net_lab[i]})
        self.stats.funding_days = len(rows)
        return rows


def json_text(value) -> str:
    """JSON as the app writes it (SQLAlchemy's JSON type, app.db.rows' COPY: json.dumps), which
    row hashes cover verbatim (app.ledger.row_hashes.stored_json)."""
    return json.dumps(value)


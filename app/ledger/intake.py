"""Many gifts through the one door in one transaction: an import's gifts.

record_gift() is one transaction per gift: take the ledger lock, read the donor with its
affiliations, read the funding windows, insert four rows and upsert a day's totals,
commit. Inside ledger_batch() the lock is held for the whole batch and nothing else
writes money, so what those reads return can only change by the batch's own gifts.
GiftIntake records a sequence of gifts there with the same screening as the door
(gifts.screen_new_gift, then gifts.set_screened_status), but:

- reads each donor with its affiliations once, and the funding windows once
  (windows.FundingMemory), keeping them in step with every gift it adds to the funding;
- checks external_ref and the payment ids against the gifts of this intake in memory, and
  against the database with one query per chunk, before the chunk is written;
- writes in chunks: gifts, attributions, decisions and audit entries (continuing the hash
  chain in order) by rows.bulk_insert (ids chosen first; COPY on PostgreSQL), and the
  funding totals and funding-mix credits summed per day: one statement or two per table.

Each gift is screened in the order given against the ledger as it stands after every gift
before it, written or not, so its decision is the one record_gift() would make at that
point. tests/ledger/test_intake.py records the same gifts both ways and compares every decision
(outcome, reasons, figures, version), status and lab part, the daily totals and the
funding-mix credits, and verifies the audit chain.

Any error fails the batch (ledger_batch will not commit), as an error in a ledger_write()
inside a batch does. While the intake is open it is the batch's only writer
(locking.exclusive_writer): another write would read a ledger without the rows the intake
has not written yet.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from itertools import groupby

from sqlmodel import Session

from app.db import rows
from app.db.locking import exclusive_writer, plans_for_point_writes
from app.db.lookups import one_of
from app.errors import Duplicate, LedgerError, RowRefused, ValidationFailed
from app.ledger import audit, funding, pledges, row_hashes, windows
from app.ledger.audit import Actor
from app.ledger.campaigns import Designation
from app.ledger.facts import (
    DONOR_WITH_AFFILIATIONS,
    DONORS_WITH_AFFILIATIONS,
    Affiliations,
    CoveredOrganizations,
    RelativeIndex,
    Share,
    donor_with_affiliations,
)
from app.ledger.gifts import (
    PAYMENT_ID_COLUMNS,
    PaymentRefs,
    decision_values,
    payment_ids,
    recorded_entry,
    recorded_payment_ids,
    screen_new_gift,
    set_screened_status,
    share_credits,
)
from app.ledger.identity import MatchIndex
from app.ledger.tributes import tribute_values
from models import Attribution, Decision, Donor, Gift, GiftDesignation, GiftTribute
from models.money import GIFT_CEILING_MINOR
from models.schemas import GiftCreate, TributeIn
from policies import Evaluation, FundingFacts, Policy

#: Gifts screened before their rows are written (a bulk write per table). Small: a gift
#: waiting to be written holds its evaluation, decision and audit data, and with 1,000
#: waiting the garbage collector's full collections (over everything long-lived) cost
#: about a tenth of a 100,000-gift import; with 200, the bulk writes still dominate.
CHUNK = 200
#: Donors kept with their affiliations; beyond this the cache starts again.
DONOR_CACHE = 20_000


@dataclass
class Screened:
    """A gift the intake has screened. gift is a plain object, not in the session: its id is
    set once its chunk is written, and changing it changes nothing in the database (read
    the gift by its id for that)."""

    gift: Gift
    evaluation: Evaluation
    #: What the caller passed with it (an import's line number), for its errors.
    tag: object = None


#: A gift refused when its chunk was written (a payment id already in the database).
GiftRefused = RowRefused


@dataclass
class _Pending:
    screened: Screened
    shares: list[Share]
    #: What it credits to organisations, if it counts as funding (funding.add_to_funding).
    credits: funding.Credits | None
    #: Its campaign, appeal and fund, if it names any.
    designation: Designation | None = None
    #: In honour or memory of someone, if it is a tribute gift.
    tribute: TributeIn | None = None


class GiftIntake:
    """Record many gifts inside ledger_batch(), screened one by one, written in chunks.

        with ledger_batch(session), GiftIntake(session, actor, policy, "USD") as intake:
            for data in gifts:
                screened = intake.record(data, tag=line)

    Leaving the block normally writes what is left; the batch then commits.
    """

    def __init__(self, session: Session, actor: Actor, policy: Policy,
                 reporting_currency: str, *, chunk: int | None = None,
                 max_gift_minor: int = GIFT_CEILING_MINOR, open_only: bool = False):
        self.session = session
        #: New gifts from staff (the CSV import): no closed campaign, appeal or fund.
        self.open_only = open_only
        self.actor = actor
        self.policy = policy
        self.reporting_currency = reporting_currency
        self.max_gift_minor = max_gift_minor
        self.chunk = chunk or CHUNK
        self._pending: list[_Pending] = []
        self._donors: dict[int, tuple[Donor, Affiliations]] = {}
        self._covered = CoveredOrganizations(session)
        #: Who else each donor may be: read once, when the intake opens (identity.MatchIndex).
        self._matches: MatchIndex | None = None
        #: Whom each donor is related to: read once too (facts.RelativeIndex).
        self._relatives: RelativeIndex | None = None
        self._memory: windows.FundingMemory | None = None
        #: (column, value) of every unique id this intake has recorded.
        self._seen: dict[tuple[str, str], object] = {}
        self._stack: ExitStack | None = None
        self._batch = None

    def __enter__(self) -> GiftIntake:
        with ExitStack() as stack:
            self._batch = stack.enter_context(exclusive_writer(self.session, "a GiftIntake"))
            # Any exception out of the block fails the batch, even one a caller then catches
            # inside ledger_batch: the chunks already written must not commit without the rest.
            stack.enter_context(self._batch.joined(self.session))
            stack.enter_context(plans_for_point_writes(self.session))
            # Under the lock, inside the batch: no record it reads can change until the end.
            self._matches = MatchIndex(self.session)
            self._relatives = RelativeIndex(self.session, self._covered)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # The stack must see the block's exception, or the flush's: on an error nothing
        # more may run in the transaction (PostgreSQL has aborted it; the batch rolls back).
        stack = self._stack
        try:
            if exc_type is None:
                self.flush()
        except BaseException:
            if not stack.__exit__(*sys.exc_info()):
                raise
        else:
            stack.__exit__(exc_type, exc, tb)
        finally:
            self._batch = None

    # -- screening ---------------------------------------------------------------------------

    def record(self, data: GiftCreate, *, refs: PaymentRefs = PaymentRefs(),  # noqa: B008
               tag: object = None) -> Screened:
        """Screen one gift against the ledger as it stands after the gifts before it."""
        if self._batch is None:
            raise RuntimeError("use GiftIntake as a context manager inside ledger_batch()")
        with self._batch.joined(self.session):
            if data.matching_gift_for is not None:
                # The matched gift is read from the database, and may be one of this
                # intake's: write what is held first.
                self._write()
            try:
                donor, affiliations = self._donor(data.donor_id)
                gift, shares, evaluation, designation = screen_new_gift(
                    self.session, data, donor, affiliations, self.policy,
                    self.reporting_currency, refs, self.actor,
                    check_unique=lambda data, refs: self._check_unique(data, refs, tag),
                    funding_facts=self._funding_facts, covered=self._covered,
                    max_gift_minor=self.max_gift_minor, matcher=self._matches,
                    relatives=self._relatives, open_only=self.open_only)
            except LedgerError:
                # record_gift, one by one, would have stopped at an earlier gift whose
                # payment id is already recorded: report that one first. (An error while
                # reading the windows has written and emptied the pending list: nothing
                # to check then.)
                self._refuse_recorded(self._pending)
                raise
            set_screened_status(gift, evaluation)
            credits = None
            if gift.counts_as_funding:
                self._memory.add_gift(gift)
                credits = share_credits(self.session, shares, donor)
            screened = Screened(gift, evaluation, tag)
            self._pending.append(_Pending(screened, shares, credits, designation, data.tribute))
            if len(self._pending) >= self.chunk:
                self._write()
        return screened

    def flush(self) -> None:
        """Write every gift screened so far."""
        if self._batch is None:
            raise RuntimeError("use GiftIntake as a context manager inside ledger_batch()")
        with self._batch.joined(self.session):
            self._write()

    def _donor(self, donor_id: int) -> tuple[Donor, Affiliations]:
        if donor_id not in self._donors:
            if len(self._donors) >= DONOR_CACHE:
                self._donors.clear()
            found = self.session.execute(DONOR_WITH_AFFILIATIONS, {"donor_id": donor_id}).all()
            donor, affiliations = donor_with_affiliations(found)
            if donor is None:
                raise ValidationFailed({"donor_id": ["no such donor"]})
            self._donors[donor_id] = (donor, affiliations)
        return self._donors[donor_id]

    def _funding_facts(self, day: date) -> FundingFacts:
        if self._memory is None or day < self._memory.first_day:
            # An earlier date than the memory covers (gifts not in date order): it must
            # also hold refunds made after that date, so read it again, with this
            # intake's gifts written first.
            self._write()
            self._memory = windows.FundingMemory(self.session, day, self.policy.window_days)
        return self._memory.facts(day)

    def _check_unique(self, data: GiftCreate, refs: PaymentRefs, tag: object) -> None:
        values = list(payment_ids(data, refs).items())
        for key in values:
            if key in self._seen:
                raise ValidationFailed({key[0]: [f"repeats an earlier gift of this batch "
                                                 f"({self._seen[key]})"]})
        for key in values:
            self._seen[key] = tag

    # -- writing -----------------------------------------------------------------------------

    def _write(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        session = self.session
        self._refuse_recorded(pending)
        gifts = [p.screened.gift for p in pending]
        ids = rows.bulk_insert(session, Gift, [rows.values_of(g) for g in gifts],
                                return_ids=True)
        for gift, gift_id in zip(gifts, ids, strict=True):
            gift.id = gift_id
        attributions = [
            {"gift_id": p.screened.gift.id, "donor_id": share.donor_id,
             "fraction_ppm": share.fraction_ppm, "basis": share.basis}
            for p in pending for share in p.shares
        ]
        attribution_ids = rows.bulk_insert(session, Attribution, attributions, return_ids=True)
        decisions = [
            rows.values_of(rows.new(Decision, **decision_values(
                p.screened.gift.id, p.screened.evaluation.outcome, p.screened.evaluation,
                kind="screening", actor=self.actor)))
            for p in pending
        ]
        decision_ids = rows.bulk_insert(session, Decision, decisions, return_ids=True)
        designations = [p.designation.values(p.screened.gift.id) for p in pending
                        if p.designation is not None]
        designation_ids = rows.bulk_insert(session, GiftDesignation, designations,
                                           return_ids=True) if designations else []
        # Each gift's entry seals its rows as written (row_hashes), from the values in hand.
        attribution_seals = iter([
            row_hashes.seal_values(Attribution, {**values, "id": attribution_id})
            for values, attribution_id in zip(attributions, attribution_ids, strict=True)])
        designation_seals = iter([
            row_hashes.seal_values(GiftDesignation, {**values, "id": designation_id})
            for values, designation_id in zip(designations, designation_ids, strict=True)])
        tributes = [tribute_values(p.tribute, p.screened.gift.id) for p in pending
                    if p.tribute is not None]
        tribute_ids = rows.bulk_insert(session, GiftTribute, tributes,
                                       return_ids=True) if tributes else []
        tribute_seals = iter([
            row_hashes.seals_of_values(GiftTribute, {**values, "id": tribute_id})
            for values, tribute_id in zip(tributes, tribute_ids, strict=True)])
        audit.append_many(session, self.actor, [
            ("gift.recorded", "gift", p.screened.gift.id,
             recorded_entry(p.screened.gift, decision_id, p.screened.evaluation.policy_version,
                            p.designation),
             [p.screened.gift, row_hashes.seal_values(Decision, {**values, "id": decision_id}),
              *[next(attribution_seals) for _ in p.shares],
              *([next(designation_seals)] if p.designation is not None else []),
              *(next(tribute_seals) if p.tribute is not None else [])])
            for p, values, decision_id in zip(pending, decisions, decision_ids, strict=True)
        ])
        self._write_funding(pending)
        for pledge_id in sorted({g.pledge_id for g in gifts
                                 if g.pledge_id is not None and g.status == "accepted"}):
            pledges.track_payments(session, pledge_id, self.actor)

    def _refuse_recorded(self, pending: list[_Pending]) -> None:
        """One query per unique column for the chunk: any of its ids in the database? The
        first such gift, in the order given, is refused (as record_gift would have)."""
        by_column: dict[str, dict[str, int]] = defaultdict(dict)
        for position, p in enumerate(pending):
            gift = p.screened.gift
            for column in PAYMENT_ID_COLUMNS:
                value = getattr(gift, column)
                if value is not None:
                    by_column[column][value] = position
        first: tuple[int, str, int] | None = None  # (position, column, recorded gift id)
        for (column, value), gift_id in recorded_payment_ids(self.session, by_column).items():
            position = by_column[column][value]
            if first is None or position < first[0]:
                first = (position, column, gift_id)
        if first is not None:
            position, column, gift_id = first
            raise GiftRefused(pending[position].screened.tag, Duplicate(column, gift_id))

    def prefetch(self, donor_ids: Iterable[int]) -> None:
        """Read donors (with their affiliations) that gifts to come will name, many per
        statement, instead of one statement per donor at its first gift."""
        if self._batch is None:
            raise RuntimeError("use GiftIntake as a context manager inside ledger_batch()")
        wanted = sorted({i for i in donor_ids if i not in self._donors})[:DONOR_CACHE]
        if len(self._donors) + len(wanted) > DONOR_CACHE:
            self._donors.clear()
        with self._batch.joined(self.session):
            for start in range(0, len(wanted), CHUNK):
                found = self.session.execute(DONORS_WITH_AFFILIATIONS.where(
                    one_of(self.session, Donor.id, wanted[start:start + CHUNK]))).all()
                for donor_id, group in groupby(found, key=lambda row: row[0].id):
                    self._donors[donor_id] = donor_with_affiliations(list(group))

    def _write_funding(self, pending: list[_Pending]) -> None:
        """What funding.add_to_funding would add per gift, summed per day (and category)
        first."""
        days: dict[date, list[int]] = {}
        credited = []
        for p in pending:
            gift = p.screened.gift
            if gift.counts_as_funding:
                # A new gift has had nothing refunded: add_to_funding adds amount, lab
                # part, 1.
                day = days.setdefault(gift.received_on, [0, 0, 0])
                day[0] += gift.reporting_amount_minor
                day[1] += gift.lab_minor
                day[2] += 1
                credited.append((gift.received_on, gift.reporting_amount_minor, p.credits))
        funding.add_funding_days(self.session, [
            {"day": day, "total_minor": total, "lab_minor": lab, "gift_count": count,
             "refunded_minor": 0, "refunded_lab_minor": 0}
            for day, (total, lab, count) in days.items()
        ])
        funding.add_mix_days(self.session, funding.credited_days(credited))

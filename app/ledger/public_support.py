"""The public-support test from the ledger: the reader that turns gifts, refunds,
attributions, organisations and the public-support facts into the plain contributions
policies.public_support computes on, and the audited writes of those facts.

Which gifts count: accepted gifts (cash; in-kind only if the rules say so) received in the
five calendar years, each at its reporting-currency amount as recorded, less the refunds
(and reversals) dated on or before the last day of the tax year: a refund made after the
year closed does not rewrite the year as filed. A gift's contributor is named by its
attributions when all of them are on a basis the rules follow, else it is the donor.

Treated as one contributor: donors linked by a support_link (a spouse), and organisation
donors whose organisations share a top parent (a company and its subsidiaries).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import delete, func, literal_column, or_, select
from sqlmodel import Session

from app.db.locking import ledger_write
from app.db.lookups import one_of
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.ledger import audit, row_hashes
from app.ledger.audit import Actor
from models import Attribution, Donor, Gift, Organization, Refund, utcnow
from models.public_support import (
    SUPPORT_CLASSES,
    SUPPORT_RELATIONS,
    SupportClass,
    SupportFactRemoval,
    SupportLink,
    UnusualGrant,
)
from policies.public_support import (
    Contribution,
    DonorSum,
    PublicSupport,
    PublicSupportRules,
    YearSum,
    compute,
    donor_groups,
)

#: Who may record or remove the facts: each changes who counts as public support.
REVIEWING_ROLES = ("reviewer", "admin")
PPM = 1_000_000


@dataclass
class LedgerPublicSupport:
    """The computation and the ledger facts it used, for the API, pages and CLI."""

    result: PublicSupport
    currency: str
    #: donor id -> (name, type), for every donor the figures name.
    donors: dict[int, tuple[str, str]]
    #: Every pair treated as one: {id (None for organisations under one parent), donor_ids,
    #: relation, reason}.
    links: list[dict]
    unlimited: dict[int, str]
    unusual: dict[int, str]


def _split(amount: int, shares: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """amount split by (donor_id, weight) in proportion to the weights (fractions in ppm,
    which sum to a million for a whole gift, or any part of them), exactly: each part is
    its floor, and the units left over go one each to the largest remainders, ties to the
    smaller donor id, so the parts sum to the amount."""
    whole = sum(weight for _, weight in shares)
    parts = [(donor, amount * weight // whole, amount * weight % whole)
             for donor, weight in shares]
    left = amount - sum(p[1] for p in parts)
    order = sorted(range(len(parts)), key=lambda i: (-parts[i][2], parts[i][0]))
    result = [[donor, floor] for donor, floor, _ in parts]
    for i in order[:left]:
        result[i][1] += 1
    return [(donor, part) for donor, part in result]


def _organization_roots(session: Session) -> dict[int, int]:
    parents = dict(session.execute(select(Organization.id, Organization.parent_id)).all())

    def root(org_id: int) -> int:
        seen = set()
        while parents.get(org_id) is not None and org_id not in seen:
            seen.add(org_id)
            org_id = parents[org_id]
        return org_id

    return {org_id: root(org_id) for org_id in parents}


@dataclass
class SupportFacts:
    """What the computation reads from the ledger for a tax year."""

    #: One by one: the parts of split gifts, and unusual grants.
    contributions: list[Contribution]
    #: Every other gift, summed in the database: per donor over the five years, per year.
    donor_sums: list[DonorSum]
    year_sums: list[YearSum]
    groups: dict[int, int]
    #: Every pair treated as one (donor_groups_of).
    links: list[dict]
    #: Unlimited donors: id -> class.
    unlimited: dict[int, str]
    #: Unusual grants: gift id -> reason.
    unusual: dict[int, str]
    #: The gifts given one by one: the sums leave them out.
    one_by_one: set[int]
    #: Donors with gifts not summed one by one: each its own contributor, at or under the
    #: 2% limit before refunds (so with no excess), related to no one and not unlimited.
    others: int = 0

    def compute(self, tax_year: int, rules: PublicSupportRules,
                extra: list[Contribution] = ()) -> PublicSupport:
        return compute(tax_year, [*self.contributions, *extra], self.groups, rules,
                       self.donor_sums, self.year_sums, self.others)


def _counted(tax_year: int, rules: PublicSupportRules) -> tuple:
    first, last = date(tax_year - rules.years + 1, 1, 1), date(tax_year, 12, 31)
    kinds = ("cash", "in_kind") if rules.count_in_kind else ("cash",)
    return (Gift.status == "accepted", Gift.kind.in_(kinds),
            Gift.received_on >= first, Gift.received_on <= last)


def _chunks(ids, size: int = 500):
    ordered = sorted(ids)
    for start in range(0, len(ordered), size):
        yield ordered[start:start + size]


def _covered(session: Session, tax_year: int, rules: PublicSupportRules) -> tuple:
    """_counted, written so that SQLite reads the gifts from ix_gift_donor_status_received_on
    alone (donor, status, date, kind, amount and reporting currency: migration 0037). With
    the plain conditions it takes the (status, received_on) index and fetches each of the
    five years' gifts from the table, six times slower at a million gifts; a unary plus
    keeps a column's condition off the indexes. PostgreSQL picks the index-only scan itself.
    """
    if session.get_bind().dialect.name != "sqlite":
        return _counted(tax_year, rules)

    def plain(column):
        return literal_column(f"+{column.table.name}.{column.name}", type_=column.type)

    first, last = date(tax_year - rules.years + 1, 1, 1), date(tax_year, 12, 31)
    kinds = ("cash", "in_kind") if rules.count_in_kind else ("cash",)
    received_on = plain(Gift.received_on)
    return (plain(Gift.status) == "accepted", Gift.kind.in_(kinds),
            received_on >= first, received_on <= last)


def contributions(session: Session, tax_year: int, rules: PublicSupportRules,
                  extra_donor_ids: set[int] = frozenset()) -> SupportFacts:
    """The five years' contributions, read so that a ledger of a million gifts reaches
    Python as a few rows, not one per gift or per donor:

    1. Line 1 per year: one GROUP BY year (and reporting currency) over the gifts.
    2. Refunds by donor and year; gifts given one by one (split by their attributions
       between contributors, or unusual grants), taken out of the sums.
    3. The 2% limit then follows from line 1 (compute works it out again, the same way).
       Only donors who can matter are summed per donor: those whose five-year gifts exceed
       the limit before refunds (a donor at or under it has no excess), and every donor the
       rules treat apart whatever the amount (linked, organisation, unlimited, giving or
       credited with a gift given one by one, extra_donor_ids). The others are counted in
       the same statement (`others`): each is its own contributor under the limit.

    extra_donor_ids: donors with no gift yet who must join their groups, and whose expected
    money (the forecast's pledges) is added to their sums."""
    first, last = date(tax_year - rules.years + 1, 1, 1), date(tax_year, 12, 31)
    counted = _counted(tax_year, rules)
    kinds = ("cash", "in_kind") if rules.count_in_kind else ("cash",)
    years = range(first.year, last.year + 1)
    year = func.extract("year", Gift.received_on)

    # 1. Line 1 per year, grouped by the reporting currency too, which costs no second pass
    # over the gifts: minor units of two currencies must never be added (review finding),
    # so a ledger whose reporting currency changed within the five years is refused.
    by_year = {y: [0, 0] for y in years}
    currencies = set()
    covered = _covered(session, tax_year, rules)
    for y, currency, amount, gifts in session.execute(select(
            year, Gift.reporting_currency, func.sum(Gift.reporting_amount_minor), func.count())
            .where(*covered).group_by(year, Gift.reporting_currency)):
        currencies.add(currency)
        by_year[int(y)][0] += int(amount or 0)
        by_year[int(y)][1] += int(gifts)
    if len(currencies) > 1:
        raise NotAllowed(f"the gifts of {first.year}-{last.year} are recorded in more than one "
                         f"reporting currency ({', '.join(sorted(currencies))}): the public "
                         "support test cannot add them")

    # What comes off a donor's sum, per donor and year: [amount, gifts].
    off: dict[int, dict[int, list[int]]] = {}

    def take(donor_id: int, y: int, amount: int, gifts: int) -> None:
        by_year[y][0] -= amount
        by_year[y][1] -= gifts
        row = off.setdefault(donor_id, {}).setdefault(y, [0, 0])
        row[0] += amount
        row[1] += gifts

    # 2. Refunds (and reversals, negative) dated on or before the year's end, by the donor and
    # year of their gift. Refunds carry their gift's date (indexed): the join reads the
    # gifts refunded, not every gift.
    # (The IN list makes SQLite start from the few refunds, not from every gift.)
    refund_dates = (Refund.gift_received_on >= first, Refund.gift_received_on <= last,
                    Refund.refunded_on <= last)
    for donor_id, y, amount in session.execute(
            select(Gift.donor_id, year, func.sum(Refund.reporting_amount_minor))
            .select_from(Refund).join(Gift, Gift.id == Refund.gift_id)
            .where(*refund_dates, *counted,
                   Gift.id.in_(select(Refund.gift_id).where(*refund_dates)))
            .group_by(Gift.donor_id, year)):
        take(donor_id, int(y), int(amount or 0), 0)

    unlimited = {donor_id: cls for donor_id, cls in session.execute(
        select(SupportClass.donor_id, SupportClass.support_class)).all()
        if cls in rules.unlimited_classes}
    unusual = dict(session.execute(select(UnusualGrant.gift_id, UnusualGrant.reason)).all())
    # Gifts credited to someone other than their donor: a share on another basis than
    # "donor" (joint, DAF advisor, employer match; few). Split only when every basis is one
    # the rules follow; then, like unusual grants, given one by one.
    shares: dict[int, list[tuple[int, int, str]]] = {}
    # (Not joined with gift: SQLite would visit every gift of the years for them. Those not
    # counted are dropped when the gifts are read below.)
    credited = set(session.execute(
        select(Attribution.gift_id).where(Attribution.basis != "donor")).scalars())
    for chunk in _chunks(credited):
        for gift_id, donor_id, ppm, basis in session.execute(
                select(Attribution.gift_id, Attribution.donor_id, Attribution.fraction_ppm,
                       Attribution.basis)
                .where(one_of(session, Attribution.gift_id, chunk)).order_by(Attribution.id)):
            shares.setdefault(gift_id, []).append((donor_id, ppm, basis))
    split = {gift_id for gift_id, by in shares.items()
             if all(basis in rules.follow_attribution_bases for *_, basis in by)}

    result: list[Contribution] = []
    one_by_one: set[int] = set()
    payers: set[int] = set()
    for chunk in _chunks(split | unusual.keys()):
        refunded = dict(session.execute(
            select(Refund.gift_id, func.sum(Refund.reporting_amount_minor))
            .where(one_of(session, Refund.gift_id, chunk), Refund.refunded_on <= last)
            .group_by(Refund.gift_id)).all())
        # By id alone, then checked here: with the years' conditions in the query SQLite
        # walks every gift of the years instead of looking up these few.
        for gift_id, donor_id, received_on, amount, status, kind in session.execute(
                select(Gift.id, Gift.donor_id, Gift.received_on, Gift.reporting_amount_minor,
                       Gift.status, Gift.kind).where(one_of(session, Gift.id, chunk))):
            if status != "accepted" or kind not in kinds or not first <= received_on <= last:
                continue
            net = amount - int(refunded.get(gift_id) or 0)
            take(donor_id, received_on.year, net, 1)
            one_by_one.add(gift_id)
            payers.add(donor_id)
            parts = (_split(net, [(d, ppm) for d, ppm, _ in shares[gift_id]])
                     if gift_id in split else [(donor_id, net)])
            for contributor, part in parts:
                result.append(Contribution(gift_id=gift_id, contributor_id=contributor,
                                           year=received_on.year, amount_minor=part,
                                           unlimited=contributor in unlimited,
                                           unusual=gift_id in unusual))
    year_sums = [YearSum(y, *by_year[y]) for y in years]

    # 3. The limit as compute() works it out (line 1 of the five years, the unusual grants
    # left out), and the donors who can matter.
    total = (sum(y.amount_minor for y in year_sums)
             + sum(c.amount_minor for c in result if not c.unusual))
    limit = total * rules.donor_limit.numerator // rules.donor_limit.denominator
    roots = _organization_roots(session)
    org_donors = dict(session.execute(select(Donor.id, Donor.organization_id)
                                      .where(Donor.organization_id.is_not(None))).all())
    per_root: dict[int, int] = {}
    for org_id in org_donors.values():
        per_root[roots.get(org_id, org_id)] = per_root.get(roots.get(org_id, org_id), 0) + 1
    linked = {d for pair in session.execute(
        select(SupportLink.donor_id, SupportLink.other_donor_id)) for d in pair}
    apart = (linked | unlimited.keys() | payers | {c.contributor_id for c in result}
             | set(extra_donor_ids)
             | {d for d, org_id in org_donors.items() if per_root[roots.get(org_id, org_id)] > 1})
    gross = func.sum(Gift.reporting_amount_minor)
    # Every donor with gifts is summed in the database; only those over the limit leave it,
    # with the number of donors (the window runs before the outer filter) on each row, and
    # one row whatever the amounts so that the number always arrives.
    per_donor = select(
        Gift.donor_id, gross.label("amount"), func.count().label("gifts"),
        func.count().over().label("donors"), func.row_number().over().label("n"),
    ).where(*covered).group_by(Gift.donor_id).subquery()
    sums: dict[int, tuple[int, int]] = {}
    donors_with_gifts = 0
    for donor_id, amount, gifts, donors, _n in session.execute(
            select(per_donor).where(or_(per_donor.c.amount > limit, per_donor.c.n == 1))):
        sums[donor_id] = (int(amount), int(gifts))
        donors_with_gifts = int(donors)
    # The donors apart, by donor (the same index, sought): few.
    for chunk in _chunks(apart - sums.keys()):
        for donor_id, amount, gifts in session.execute(select(
                Gift.donor_id, gross, func.count()).where(
                *covered, one_of(session, Gift.donor_id, chunk)).group_by(Gift.donor_id)):
            sums[donor_id] = (int(amount), int(gifts))
    donor_sums = []
    for donor_id, (amount, gifts) in sums.items():
        for taken, taken_gifts in off.get(donor_id, {}).values():
            amount -= taken
            gifts -= taken_gifts
        if gifts:
            donor_sums.append(DonorSum(donor_id, amount, gifts, donor_id in unlimited))
    groups, links = donor_groups_of(
        session, {c.contributor_id for c in result} | {d.contributor_id for d in donor_sums}
        | set(extra_donor_ids))
    return SupportFacts(result, donor_sums, year_sums, groups, links, unlimited, unusual,
                        one_by_one, others=donors_with_gifts - len(sums))


def year_gift_ids(session: Session, tax_year: int, rules: PublicSupportRules,
                  facts: SupportFacts) -> dict[int, list[int]]:
    """year -> the ids of the gifts line 1 sums (unusual grants left out), read on demand."""
    year = func.extract("year", Gift.received_on)
    found: dict[int, list[int]] = {}
    for gift_id, y in session.execute(select(Gift.id, year).where(*_counted(tax_year, rules))
                                      .order_by(Gift.id)):
        if gift_id not in facts.unusual:
            found.setdefault(int(y), []).append(gift_id)
    return found


def contributor_gift_ids(session: Session, tax_year: int, rules: PublicSupportRules,
                         facts: SupportFacts, contributors: list[list[int]]) -> list[list[int]]:
    """For each contributor (its donor ids), the ids of the gifts whose contributions count
    for it, read on demand: its donors' own gifts that are simply theirs, and the split gifts
    they have a part of; unusual grants left out. All contributors at once: one query per
    500 donors and one pass over the contributions given one by one (per contributor, both
    cost thousands of queries and passes on a large ledger)."""
    by_donor: dict[int, set[int]] = {}
    for c in facts.contributions:
        if not c.unusual:
            by_donor.setdefault(c.contributor_id, set()).add(c.gift_id)
    for chunk in _chunks({d for donors in contributors for d in donors}):
        for gift_id, donor_id in session.execute(
                select(Gift.id, Gift.donor_id).where(*_counted(tax_year, rules),
                                                     one_of(session, Gift.donor_id, chunk))):
            if gift_id not in facts.one_by_one:
                by_donor.setdefault(donor_id, set()).add(gift_id)
    return [sorted(set().union(*(by_donor.get(d, ()) for d in donors)))
            for donors in contributors]


def donor_groups_of(session: Session, donor_ids: set[int]) -> tuple[dict[int, int], list[dict]]:
    pairs: list[tuple[int, int]] = []
    links: list[dict] = []
    # (Columns, not table models: building thousands of SQLModel objects cost more than
    # reading them.)
    for link_id, donor_id, other_id, relation, reason in session.execute(
            select(SupportLink.id, SupportLink.donor_id, SupportLink.other_donor_id,
                   SupportLink.relation, SupportLink.reason).order_by(SupportLink.id)):
        pairs.append((donor_id, other_id))
        links.append({"id": link_id, "donor_ids": [donor_id, other_id],
                      "relation": relation, "reason": reason})
    roots = _organization_roots(session)
    by_root: dict[int, list[int]] = {}
    for donor_id, org_id in session.execute(
            select(Donor.id, Donor.organization_id).where(Donor.organization_id.is_not(None))):
        if donor_id in donor_ids:
            by_root.setdefault(roots.get(org_id, org_id), []).append(donor_id)
    for root, members in sorted(by_root.items()):
        members.sort()
        for other in members[1:]:
            pairs.append((members[0], other))
            links.append({"id": None, "donor_ids": [members[0], other],
                          "relation": "controlled_entity",
                          "reason": f"organisations under one parent (organisation {root})"})
    return donor_groups(donor_ids, pairs), links


def public_support(session: Session, tax_year: int, rules: PublicSupportRules,
                   currency: str, gift_ids: bool = True) -> LedgerPublicSupport:
    """The computation for tax_year. gift_ids: fill in the ids of the gifts behind each
    year's line 1 and behind each contributor the figures list (read after the computation,
    which works on sums); without them (Schedule B, the bench) only their counts."""
    facts = contributions(session, tax_year, rules)
    links, unlimited, unusual = facts.links, facts.unlimited, facts.unusual
    result = facts.compute(tax_year, rules)
    if gift_ids:
        by_year = year_gift_ids(session, tax_year, rules, facts)
        for figures in result.years:
            figures.gift_ids = by_year.get(figures.year, [])
        listed = [c for c in result.contributors
                  if c.excess_minor > 0 or c.unlimited or len(c.donor_ids) > 1]
        for c, ids in zip(listed, contributor_gift_ids(
                session, tax_year, rules, facts, [c.donor_ids for c in listed]), strict=True):
            c.gift_ids = ids
    # Names for the contributors the figures list (over the limit, unlimited or grouped)
    # and the links: a few, never every donor of a large ledger.
    named = {d for c in result.contributors
             if c.excess_minor > 0 or c.unlimited or len(c.donor_ids) > 1 for d in c.donor_ids}
    named |= {d for link in links for d in link["donor_ids"]}
    donors = {}
    ordered = sorted(named)
    for start in range(0, len(ordered), 500):
        for donor_id, name, kind in session.execute(
                select(Donor.id, Donor.name, Donor.type)
                .where(one_of(session, Donor.id, ordered[start:start + 500]))):
            donors[donor_id] = (name, kind)
    return LedgerPublicSupport(result=result, currency=currency, donors=donors, links=links,
                               unlimited=unlimited, unusual=unusual)


# --- the facts, recorded and removed with an audit entry ---------------------------------

def _reviewer(actor: Actor, what: str) -> None:
    if actor.role not in REVIEWING_ROLES:
        raise NotAllowed(f"only a reviewer or an admin may {what}")


def _reason(reason: str | None) -> str:
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["say why"]})
    return reason.strip()


def _donor(session: Session, donor_id: int, field: str = "donor_id") -> Donor:
    donor = session.get(Donor, donor_id)
    if donor is None:
        raise ValidationFailed({field: [f"no donor {donor_id}"]})
    return donor


def _removal(session: Session, fact: str, row_key: int, *, was: str | None, was_because: str,
             reason: str, by: int | None, donors: tuple[int | None, int | None] = (None, None)
             ) -> SupportFactRemoval:
    """What a removed or replaced fact said and why it went, kept on a row of its own: the
    reasons are people's words and stay out of the audit entries (which name the row)."""
    row = SupportFactRemoval(fact=fact, row_key=row_key, donor_id=donors[0],
                             other_donor_id=donors[1], was=was, was_because=was_because,
                             reason=reason, removed_by_id=by)
    session.add(row)
    session.flush()
    return row


def link_donors(session: Session, donor_id: int, other_donor_id: int, relation: str,
                reason: str, actor: Actor) -> SupportLink:
    """Treat two donors as one contributor (a spouse, family, a controlled entity). The
    reason stays on the row; the audit entry seals the row and names no words of it."""
    _reviewer(actor, "say two donors are one contributor")
    reason = _reason(reason)
    if relation not in SUPPORT_RELATIONS:
        raise ValidationFailed({"relation": [f"one of {', '.join(SUPPORT_RELATIONS)}"]})
    if donor_id == other_donor_id:
        raise ValidationFailed({"other_donor_id": ["a donor is already one with itself"]})
    low, high = sorted((donor_id, other_donor_id))
    with ledger_write(session):
        _donor(session, donor_id)
        _donor(session, other_donor_id, "other_donor_id")
        existing = session.execute(select(SupportLink).where(
            SupportLink.donor_id == low, SupportLink.other_donor_id == high)).scalar_one_or_none()
        if existing is not None:
            raise NotAllowed(f"donors {low} and {high} are already linked (link {existing.id})")
        link = SupportLink(donor_id=low, other_donor_id=high, relation=relation, reason=reason,
                           created_by_id=actor.user_id)
        session.add(link)
        session.flush()
        audit.append(session, actor, "public_support.linked", "donor", low, {
            "link_id": link.id, "donor_ids": [low, high], "relation": relation},
            sealed=[link])
    return link


def unlink_donors(session: Session, link_id: int, reason: str, actor: Actor) -> None:
    _reviewer(actor, "remove a link between donors")
    reason = _reason(reason)
    with ledger_write(session):
        link = session.get(SupportLink, link_id)
        if link is None:
            raise NotFound("support link", link_id)
        removal = _removal(session, "support_link", link.id, was=link.relation,
                           was_because=link.reason, reason=reason, by=actor.user_id,
                           donors=(link.donor_id, link.other_donor_id))
        data = {"link_id": link.id, "donor_ids": [link.donor_id, link.other_donor_id],
                "relation": link.relation, "removal_id": removal.id}
        session.execute(delete(SupportLink).where(SupportLink.id == link_id))
        audit.append(session, actor, "public_support.unlinked", "donor", data["donor_ids"][0],
                     data, sealed=[removal, row_hashes.removed(SupportLink, link_id)])


def set_support_class(session: Session, donor_id: int, support_class: str, reason: str,
                      actor: Actor) -> SupportClass:
    """Record that a donor is a governmental unit or a publicly supported charity. A class
    already recorded is replaced: what it said goes to a support_fact_removal row."""
    _reviewer(actor, "set a donor's public-support class")
    reason = _reason(reason)
    if support_class not in SUPPORT_CLASSES:
        raise ValidationFailed({"support_class": [f"one of {', '.join(SUPPORT_CLASSES)}"]})
    with ledger_write(session):
        _donor(session, donor_id)
        row = session.get(SupportClass, donor_id)
        before = row.support_class if row else None
        sealed: list = []
        data: dict = {"before": before, "after": support_class}
        if row is None:
            row = SupportClass(donor_id=donor_id, support_class=support_class, reason=reason,
                               set_by_id=actor.user_id)
            session.add(row)
        else:
            removal = _removal(session, "support_class", donor_id, was=row.support_class,
                               was_because=row.reason, reason=reason, by=actor.user_id,
                               donors=(donor_id, None))
            sealed.append(removal)
            data["removal_id"] = removal.id
            row.support_class, row.reason, row.set_by_id = support_class, reason, actor.user_id
            row.set_at = utcnow()
        session.flush()
        audit.append(session, actor, "public_support.class_set", "donor", donor_id, data,
                     sealed=[row, *sealed])
    return row


def clear_support_class(session: Session, donor_id: int, reason: str, actor: Actor) -> None:
    _reviewer(actor, "clear a donor's public-support class")
    reason = _reason(reason)
    with ledger_write(session):
        row = session.get(SupportClass, donor_id)
        if row is None:
            raise NotFound("public-support class of donor", donor_id)
        before = row.support_class
        removal = _removal(session, "support_class", donor_id, was=before,
                           was_because=row.reason, reason=reason, by=actor.user_id,
                           donors=(donor_id, None))
        session.execute(delete(SupportClass).where(SupportClass.donor_id == donor_id))
        audit.append(session, actor, "public_support.class_cleared", "donor", donor_id, {
            "before": before, "removal_id": removal.id},
            sealed=[removal, row_hashes.removed(SupportClass, donor_id)])


def mark_unusual_grant(session: Session, gift_id: int, reason: str,
                       actor: Actor) -> UnusualGrant:
    """A reviewer's judgement that a gift is an unusual grant (left out of the test)."""
    _reviewer(actor, "mark an unusual grant")
    reason = _reason(reason)
    with ledger_write(session):
        if session.get(Gift, gift_id) is None:
            raise NotFound("gift", gift_id)
        if session.get(UnusualGrant, gift_id) is not None:
            raise NotAllowed(f"gift {gift_id} is already marked an unusual grant")
        row = UnusualGrant(gift_id=gift_id, reason=reason, marked_by_id=actor.user_id)
        session.add(row)
        session.flush()
        audit.append(session, actor, "public_support.unusual_grant", "gift", gift_id,
                     {"gift_id": gift_id}, sealed=[row])
    return row


def unmark_unusual_grant(session: Session, gift_id: int, reason: str, actor: Actor) -> None:
    _reviewer(actor, "unmark an unusual grant")
    reason = _reason(reason)
    with ledger_write(session):
        row = session.get(UnusualGrant, gift_id)
        if row is None:
            raise NotFound("unusual grant", gift_id)
        removal = _removal(session, "unusual_grant", gift_id, was=None,
                           was_because=row.reason, reason=reason, by=actor.user_id)
        session.execute(delete(UnusualGrant).where(UnusualGrant.gift_id == gift_id))
        audit.append(session, actor, "public_support.unusual_grant_removed", "gift", gift_id,
                     {"gift_id": gift_id, "removal_id": removal.id},
                     sealed=[removal, row_hashes.removed(UnusualGrant, gift_id)])


def merge_facts(session: Session, survivor_id: int, duplicate_id: int
                ) -> tuple[dict[str, list[int]], list]:
    """Carry the duplicate's public-support facts to the survivor when two donor records
    are merged (app.ledger.merge): a link between the two records disappears (they are one
    donor now); the duplicate's other links move, written smaller id first, unless the
    survivor already has that link; its class moves unless the survivor has one. A fact
    dropped leaves a support_fact_removal row. Inside the merge's transaction; returns
    ("table.column" -> the ids moved or removed, for its audit; the seals of every row
    written or removed, for the same entry)."""
    done: dict[str, list[int]] = {}
    sealed: list = []
    why = f"donor {duplicate_id} merged into donor {survivor_id}"
    for link in session.execute(select(SupportLink).where(
            (SupportLink.donor_id == duplicate_id)
            | (SupportLink.other_donor_id == duplicate_id))).scalars().all():
        other = link.other_donor_id if link.donor_id == duplicate_id else link.donor_id
        low, high = sorted((survivor_id, other))
        exists = other == survivor_id or session.execute(select(SupportLink.id).where(
            SupportLink.donor_id == low, SupportLink.other_donor_id == high)).first()
        if exists:
            done.setdefault("support_link.removed", []).append(link.id)
            sealed += [_removal(session, "support_link", link.id, was=link.relation,
                                was_because=link.reason, reason=why, by=None,
                                donors=(link.donor_id, link.other_donor_id)),
                       row_hashes.removed(SupportLink, link.id)]
            session.delete(link)
        else:
            done.setdefault("support_link.moved", []).append(link.id)
            link.donor_id, link.other_donor_id = low, high
            sealed.append(link)
        session.flush()
    row = session.get(SupportClass, duplicate_id)
    if row is not None:
        keep = session.get(SupportClass, survivor_id) is None
        cls, reason, set_by, set_at = row.support_class, row.reason, row.set_by_id, row.set_at
        if not keep:
            sealed.append(_removal(session, "support_class", duplicate_id, was=cls,
                                   was_because=reason, reason=why, by=None,
                                   donors=(duplicate_id, None)))
        session.delete(row)
        session.flush()
        sealed.append(row_hashes.removed(SupportClass, duplicate_id))
        if keep:
            moved = SupportClass(donor_id=survivor_id, support_class=cls, reason=reason,
                                 set_by_id=set_by, set_at=set_at)
            session.add(moved)
            session.flush()
            sealed.append(moved)
        done.setdefault("support_class.moved" if keep else "support_class.removed",
                        []).append(duplicate_id)
    return done, sealed

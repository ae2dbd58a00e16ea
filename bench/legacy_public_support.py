"""The public-support reader as it was before the aggregation moved into SQL (issue 16):
one Contribution per gift part, read gift by gift. Kept only so that the bench measures the
old and the new reader side by side in one run (bench/public_support.py) and a test checks
that they agree (tests/ledger/test_public_support_aggregate.py). Not used by the app.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlmodel import Session

from app.db.lookups import one_of
from app.errors import NotAllowed
from app.ledger.public_support import _split, donor_groups_of
from models import Attribution, Gift, Refund
from models.public_support import SupportClass, UnusualGrant
from policies.public_support import Contribution, PublicSupportRules


def contributions(session: Session, tax_year: int, rules: PublicSupportRules
                  ) -> tuple[list[Contribution], dict[int, int], list[dict], dict, dict]:
    """The five years' contributions, the donor groups, the links used, the unlimited
    donors (id -> class) and the unusual grants (gift id -> reason)."""
    first, last = date(tax_year - rules.years + 1, 1, 1), date(tax_year, 12, 31)
    kinds = ("cash", "in_kind") if rules.count_in_kind else ("cash",)
    in_range = (Gift.status == "accepted", Gift.kind.in_(kinds),
                Gift.received_on >= first, Gift.received_on <= last)
    currencies = session.execute(select(Gift.reporting_currency).where(*in_range).distinct()
                                 ).scalars().all()
    if len(currencies) > 1:
        # Minor units of two currencies must never be added (review finding): a ledger whose
        # reporting currency changed within the five years needs a conversion first.
        raise NotAllowed(f"the gifts of {first.year}-{last.year} are recorded in more than one "
                         f"reporting currency ({', '.join(sorted(currencies))}): the public "
                         "support test cannot add them")
    gifts = session.execute(
        select(Gift.id, Gift.donor_id, Gift.received_on, Gift.reporting_amount_minor)
        .where(*in_range)).all()
    # Refunds carry their gift's date (indexed): no join with gift; refunds of gifts not
    # counted are simply never looked up.
    refunded = dict(session.execute(
        select(Refund.gift_id, func.sum(Refund.reporting_amount_minor))
        .where(Refund.gift_received_on >= first, Refund.gift_received_on <= last,
               Refund.refunded_on <= last)
        .group_by(Refund.gift_id)).all())
    # Only gifts credited to someone other than their donor need their attributions: those
    # with a share on another basis than "donor" (joint, DAF advisor, employer match; few).
    shares: dict[int, list[tuple[int, int, str]]] = {}
    credited = sorted(set(session.execute(
        select(Attribution.gift_id).where(Attribution.basis != "donor")).scalars()))
    for start in range(0, len(credited), 500):
        for gift_id, donor_id, ppm, basis in session.execute(
                select(Attribution.gift_id, Attribution.donor_id, Attribution.fraction_ppm,
                       Attribution.basis)
                .where(one_of(session, Attribution.gift_id, credited[start:start + 500]))
                .order_by(Attribution.id)).all():
            shares.setdefault(gift_id, []).append((donor_id, ppm, basis))
    unlimited = {donor_id: cls for donor_id, cls in session.execute(
        select(SupportClass.donor_id, SupportClass.support_class)).all()
        if cls in rules.unlimited_classes}
    unusual = dict(session.execute(select(UnusualGrant.gift_id, UnusualGrant.reason)).all())

    result: list[Contribution] = []
    for gift_id, donor_id, received_on, amount in gifts:
        net = amount - int(refunded.get(gift_id) or 0)
        parts = [(donor_id, net)]
        split_by = shares.get(gift_id)
        if split_by and all(basis in rules.follow_attribution_bases for *_, basis in split_by):
            parts = _split(net, [(d, ppm) for d, ppm, _ in split_by])
        for contributor, part in parts:
            result.append(Contribution(gift_id=gift_id, contributor_id=contributor,
                                       year=received_on.year, amount_minor=part,
                                       unlimited=contributor in unlimited,
                                       unusual=gift_id in unusual))
    groups, links = donor_groups_of(session, {c.contributor_id for c in result})
    return result, groups, links, unlimited, unusual

"""The public funding page: funding by category, year by year, computed from the ledger and
published frozen, hashed and signed like a conflict-of-interest disclosure
(app.ledger.disclosure).

Which money: accepted cash gifts (the policy's funding) received in the years, at the
reporting-currency amount recorded with each, less their refunds (and reversals) made up to
the day the figures are computed. Each gift's lab-employee part (`gift.lab_minor`, what the
independence policy counted, less the same share of its refunds) is "lab employees"; the
rest is split exactly (largest remainder: app.ledger.public_support._split) between the
gift's attributions that are not the lab employees' (lab_shares), in proportion to their
fractions, and each part goes to the category of the donor it names:

    governmental unit (a reviewer's public-support class)   -> government
    organisation of a covered lab (or an affiliate)          -> labs (corporate money a
                                                                reviewer accepted)
    individual                                               -> individuals
    foundation, donor-advised fund sponsor                   -> foundations
    company                                                  -> companies
    other                                                    -> other

Labs' in-kind support (free model access, credits, compute: in-kind gifts from a covered
lab's organisation donor) is not funding: it is shown apart, per lab and year, as non-cash,
at the value recorded. Donors are private: the page names only donors who agreed to be
named (`donor.public_name_consent`) and are not marked anonymous; the others are counted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlmodel import Session

from app.db import org_today
from app.db.locking import ledger_write
from app.errors import NotAllowed, SigningUnavailable
from app.ledger import audit, checkpoints
from app.ledger.audit import Actor, chain_head
from app.ledger.facts import CoveredOrganizations
from app.ledger.public_support import _split
from app.ledger.signing import AuditKeys
from models import (
    Affiliation,
    Attribution,
    Donor,
    Gift,
    Organization,
    PublishedFundingReport,
    Refund,
)
from models.money import format_amount
from models.public_support import SupportClass
from policies.share import affiliation_counts

FORMAT = "armslength public funding v1"
#: The categories in the order the page shows them (the chart's stack, bottom up).
CATEGORIES = (
    ("individuals", "Individuals"),
    ("foundations", "Foundations"),
    ("government", "Government"),
    ("lab_employees", "Lab employees"),
    ("companies", "Other companies"),
    ("labs", "Labs (corporate money accepted by a reviewer)"),
    ("other", "Other"),
)
CATEGORY_KEYS = tuple(key for key, _ in CATEGORIES)
_BY_DONOR_CATEGORY = {"individual": "individuals", "foundation": "foundations",
                      "daf_sponsor": "foundations", "company": "companies", "other": "other"}
#: How many years one page may cover.
MAX_YEARS = 20


class YearsError(ValueError):
    """Years a funding page cannot cover."""


def check_years(first_year: int, last_year: int, today: date) -> None:
    if last_year < first_year:
        raise YearsError("the last year is before the first")
    if last_year > today.year:
        raise YearsError(f"{last_year} has not begun yet")
    if last_year - first_year + 1 > MAX_YEARS:
        raise YearsError(f"at most {MAX_YEARS} years on one page")


def _money(minor: int, currency: str) -> dict:
    return {"minor": minor, "amount": format_amount(minor, currency)}


@dataclass(frozen=True)
class _Donor:
    category: str
    name: str
    named: bool
    organization_id: int | None


def lab_refunded(refunded: int, lab: int, gross: int) -> int:
    """The lab-employee part of a gift's refunds: refunded x lab / gross, rounded down (as
    app.ledger.windows.refunded_lab counts it for the share)."""
    return refunded * lab // gross if gross else 0


def lab_shares(session: Session, covered: CoveredOrganizations, gifts, shares: dict,
               cooling_off_days: int) -> dict[int, set[int]]:
    """gift id -> the donors of its attributions who are the lab employees its lab part
    counts, for the gifts with a lab part and several attributions (a joint gift of a lab
    employee and someone else; few). An attribution is a lab employee's when its donor
    (a person) had an affiliation with a covered lab or an affiliate that counts on the
    gift's date, as the policy decides it (policies.share: active, or ended less than the
    cooling-off period before). The answer is used only when it gives back the lab part
    recorded on the gift (the policy's ceil(amount x their fractions)); otherwise (the
    affiliations were edited since) the gift is left out and its rest is split over all its
    attributions, as before."""
    joint = [g for g in gifts if g.kind == "cash" and g.lab_minor > 0
             and len(shares.get(g.id, ())) > 1]
    people = sorted({d for g in joint for d, _ in shares[g.id]})
    affiliations: dict[int, list] = {}
    for start in range(0, len(people), 500):
        for aff in session.execute(
                select(Affiliation).join(Donor, Donor.id == Affiliation.donor_id)
                .where(Affiliation.donor_id.in_(people[start:start + 500]),
                       Donor.type == "person")).scalars():
            if covered.covered(aff.organization_id):
                affiliations.setdefault(aff.donor_id, []).append(aff)
    found: dict[int, set[int]] = {}
    for g in joint:
        labs = {d for d, _ in shares[g.id]
                if any(affiliation_counts(a, g.received_on, cooling_off_days)
                       for a in affiliations.get(d, ()))}
        ppm = sum(p for d, p in shares[g.id] if d in labs)
        if labs and -(-g.reporting_amount_minor * ppm // 1_000_000) == g.lab_minor:
            found[g.id] = labs
    return found


def funding_content(session: Session, first_year: int, last_year: int, currency: str,
                    organization_name: str, as_of: date | None = None, *,
                    cooling_off_days: int) -> dict:
    """The page's content for the years, as of today (the organisation's date).
    cooling_off_days: the independence policy's, to tell a joint gift's lab employees."""
    as_of = as_of or org_today(session)
    check_years(first_year, last_year, as_of)
    first, last = date(first_year, 1, 1), min(date(last_year, 12, 31), as_of)
    in_years = (Gift.status == "accepted", Gift.received_on >= first, Gift.received_on <= last)
    currencies = set(session.execute(select(Gift.reporting_currency).where(*in_years)
                                     .distinct()).scalars())
    if currencies - {currency}:
        raise NotAllowed("the gifts of these years are recorded in more than one reporting "
                         f"currency ({', '.join(sorted(currencies | {currency}))})")
    gifts = session.execute(select(Gift.id, Gift.donor_id, Gift.received_on, Gift.kind,
                                   Gift.reporting_amount_minor, Gift.lab_minor)
                            .where(*in_years, Gift.kind.in_(("cash", "in_kind")))
                            .order_by(Gift.id)).all()
    ids = [g.id for g in gifts]
    refunded: dict[int, int] = {}
    shares: dict[int, list[tuple[int, int]]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        refunded.update((gift_id, int(amount or 0)) for gift_id, amount in session.execute(
            select(Refund.gift_id, func.sum(Refund.reporting_amount_minor))
            .where(Refund.gift_id.in_(chunk), Refund.refunded_on <= as_of)
            .group_by(Refund.gift_id)))
        for gift_id, donor_id, ppm in session.execute(
                select(Attribution.gift_id, Attribution.donor_id, Attribution.fraction_ppm)
                .where(Attribution.gift_id.in_(chunk)).order_by(Attribution.id)):
            shares.setdefault(gift_id, []).append((donor_id, ppm))
    donor_ids = {g.donor_id for g in gifts} | {d for s in shares.values() for d, _ in s}
    government = set(session.execute(select(SupportClass.donor_id).where(
        SupportClass.support_class == "governmental_unit")).scalars())
    covered = CoveredOrganizations(session)
    donors: dict[int, _Donor] = {}
    ordered = sorted(donor_ids)
    for start in range(0, len(ordered), 500):
        for row in session.execute(
                select(Donor.id, Donor.category, Donor.name, Donor.anonymous,
                       Donor.public_name_consent, Donor.organization_id)
                .where(Donor.id.in_(ordered[start:start + 500]))):
            lab = row.organization_id is not None and covered.covered(row.organization_id)
            category = ("government" if row.id in government else "labs" if lab
                        else _BY_DONOR_CATEGORY[row.category])
            donors[row.id] = _Donor(category, row.name,
                                    bool(row.public_name_consent and not row.anonymous),
                                    row.organization_id)

    labs_of = lab_shares(session, covered, gifts, shares, cooling_off_days)
    years = range(first_year, last_year + 1)
    sums = {y: dict.fromkeys(CATEGORY_KEYS, 0) for y in years}
    counts = dict.fromkeys(years, 0)
    in_kind: dict[int, dict[int, list[int]]] = {y: {} for y in years}  # year -> org -> [v, n]
    contributing: set[int] = set()
    for g in gifts:
        back = refunded.get(g.id, 0)
        net = g.reporting_amount_minor - back
        year = g.received_on.year
        if g.kind == "in_kind":
            org = donors[g.donor_id].organization_id
            if org is not None and covered.covered(org):
                item = in_kind[year].setdefault(org, [0, 0])
                item[0] += net
                item[1] += 1
            continue
        counts[year] += 1
        lab = g.lab_minor - lab_refunded(back, g.lab_minor, g.reporting_amount_minor)
        sums[year]["lab_employees"] += lab
        by = shares.get(g.id) or [(g.donor_id, 1_000_000)]
        # The rest is the other contributors' money: the lab employees' shares are their
        # lab part already. (The lab part was rounded up, so the rest is never more than
        # the others' fractions of the gift.)
        rest = [(d, p) for d, p in by if d not in labs_of.get(g.id, ())]
        parts = _split(net - lab, rest or by)
        for donor_id, part in parts:
            sums[year][donors[donor_id].category] += part
            contributing.add(donor_id)

    org_names = dict(session.execute(select(Organization.id, Organization.name).where(
        Organization.id.in_({o for y in in_kind.values() for o in y} or {0}))).all())
    named = sorted(({"name": donors[d].name,
                     "category": dict(CATEGORIES)[donors[d].category]}
                    for d in contributing if donors[d].named),
                   key=lambda item: (item["name"].casefold(), item["category"]))
    return {
        "format": FORMAT,
        "organization": organization_name,
        "currency": currency,
        "first_year": first_year,
        "last_year": last_year,
        "as_of": as_of.isoformat(),
        "categories": [{"key": key, "label": label} for key, label in CATEGORIES],
        "funding": [{
            "year": y,
            "to_date": y == as_of.year,
            "gifts": counts[y],
            "total": _money(sum(sums[y].values()), currency),
            "by_category": {key: _money(sums[y][key], currency) for key in CATEGORY_KEYS},
        } for y in years],
        "lab_in_kind": [{
            "year": y,
            "total": _money(sum(v for v, _ in in_kind[y].values()), currency),
            "labs": [{"lab": org_names.get(org, f"organisation {org}"),
                      "value": _money(value, currency), "gifts": n}
                     for org, (value, n) in sorted(in_kind[y].items(),
                                                   key=lambda i: org_names.get(i[0], ""))],
        } for y in years],
        "named_donors": named,
        "private_donors": len(contributing) - len(named),
        "audit_head": chain_head(session),
    }


def canonical_json(content: dict) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def publish(session: Session, first_year: int, last_year: int, currency: str,
            organization_name: str, actor: Actor, keys: AuditKeys | None = None,
            signature_required: bool = False, *, cooling_off_days: int
            ) -> PublishedFundingReport:
    """Freeze the page for the years: its canonical JSON, that JSON's SHA-256 and the audit
    head it was computed at, under the ledger lock, with a `funding_report.published` audit
    entry and, with a signing key, a signed checkpoint of the chain ending at that entry
    (signing the content hash), in one transaction. As disclosure.publish."""
    signing = keys is not None and keys.signer is not None
    if signature_required and not signing:
        raise SigningUnavailable(
            "no audit signing key is configured (AUDIT_SIGNING_KEY_FILE or AUDIT_SIGNING_KEY): "
            "in production the funding page is published only with a signed checkpoint")
    with ledger_write(session):
        content = funding_content(session, first_year, last_year, currency, organization_name,
                                  cooling_off_days=cooling_off_days)
        text = canonical_json(content)
        record = PublishedFundingReport(
            first_year=first_year, last_year=last_year,
            as_of=date.fromisoformat(content["as_of"]), content=text,
            content_hash=content_hash(text), audit_head=content["audit_head"],
            published_by_id=actor.user_id)
        session.add(record)
        session.flush()
        audit.append(session, actor, "funding_report.published", "published_funding_report",
                     record.id, {"first_year": first_year, "last_year": last_year,
                                 "as_of": record.as_of, "content_hash": record.content_hash,
                                 "audit_head": record.audit_head, "signed": signing},
                     sealed=[record])
        if signing:
            checkpoints.take(session, keys, funding_report=record)
    return record


def published_content(record: PublishedFundingReport) -> dict:
    return json.loads(record.content)


def latest_published(session: Session) -> PublishedFundingReport | None:
    return session.execute(select(PublishedFundingReport)
                           .order_by(PublishedFundingReport.id.desc()).limit(1)
                           ).scalar_one_or_none()


CSV_HEADER = ("year", "to_date", "category", "amount", "currency", "kind")


def csv_rows(content: dict) -> list[tuple]:
    """One row per year and category (cash), then per year and lab (in-kind)."""
    labels = {c["key"]: c["label"] for c in content["categories"]}
    rows: list[tuple] = []
    for year in content["funding"]:
        for key, label in labels.items():
            rows.append((year["year"], year["to_date"], label,
                         year["by_category"][key]["amount"], content["currency"], "cash"))
        rows.append((year["year"], year["to_date"], "Total", year["total"]["amount"],
                     content["currency"], "cash"))
    for year in content["lab_in_kind"]:
        for lab in year["labs"]:
            rows.append((year["year"], year["year"] == int(content["as_of"][:4]),
                         f"In kind from {lab['lab']}", lab["value"]["amount"],
                         content["currency"], "in_kind"))
    return rows

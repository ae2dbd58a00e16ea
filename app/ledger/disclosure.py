"""The conflict-of-interest disclosure for a period, computed from the ledger.

For each public promise of the independence policy, the figure that shows it was kept
over the period [start, end] (both included):

- lab payments for evaluations accepted, and gifts from senior decision-makers accepted:
  gifts received in the period whose status is "accepted" and whose accepting decision
  (their latest: re-screening only ever holds, so an accepted gift's latest decision is
  the one that accepted it, evaluated with the facts known then) lists the rule as fired;
- the lab-employee share on the period's last day, and its highest point over the
  period: the share of the trailing window ending on each day, the same figure as
  GET /api/v1/compliance/summary?as_of=DAY;
- each exception to those two promises (a senior decision-maker's gift or a lab payment
  for evaluations accepted anyway, by a review or an override): its date, amount, rule and
  the accepting decision's public justification;
- lab corporate money accepted by a reviewer: accepted gifts received in the period whose
  screening decision fired lab_corporate_money and whose accepting decision is a review or
  an override, with that decision's public justification;
- every in-kind arrangement with a covered lab (or an affiliate) overlapping the period,
  and in-kind gifts the policy marked for disclosure.

Individual donors are never named: only organisations (labs) are. A reviewer's note is
internal and never published: only a decision's public_note is, and a human acceptance
without one says "No public justification given." Each figure carries a `sources` entry
saying how to reproduce it from the ledger or the API.

disclosure_content() turns the result into the plain JSON the API serves and a published
disclosure freezes; canonical_json() and content_hash() are what publishing stores.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

from sqlalchemy import select
from sqlmodel import Session

from app.db import org_today
from app.db.locking import ledger_write
from app.errors import SigningUnavailable
from app.ledger import audit, checkpoints
from app.ledger.audit import Actor, chain_head
from app.ledger.facts import CoveredOrganizations
from app.ledger.signing import AuditKeys
from app.ledger.windows import daily_windows
from models import (
    Attribution,
    Decision,
    Donor,
    Gift,
    InKindArrangement,
    Organization,
    PublishedDisclosure,
    Refund,
)
from models.money import format_amount
from policies import Policy, WindowTotals, share, share_text
from policies.document import RULE_IDS
from policies.rules import RULE_BY_ID

TITLE = "Conflict-of-interest disclosure"
#: What the disclosure says for a human acceptance whose decision has no public_note.
NO_PUBLIC_JUSTIFICATION = "No public justification given."
#: Rules whose firing on an accepted gift means a public promise was not kept as stated.
PROMISE_RULES = ("lab_evaluation_payment", "senior_decision_maker")
#: Decision kinds in which a person, not the policy alone, accepted a gift.
HUMAN_DECISIONS = ("review", "override")


class PeriodError(ValueError):
    """A period whose end is before its start, or outside the calendar the ledger handles."""


#: The longest period a disclosure covers (ten years): the daily share series is kept in memory.
MAX_PERIOD_DAYS = 3660


def check_period(start: date, end: date) -> None:
    if end < start:
        raise PeriodError("the period must not end before it starts")
    if start.year < 1900 or end.year > 9000:
        raise PeriodError("the period must lie between the years 1900 and 9000")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise PeriodError(f"the period must not be longer than {MAX_PERIOD_DAYS} days")


# --- results ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class GiftTally:
    """Gifts counted for one promise: how many, their amount, and what was refunded."""

    gift_ids: tuple[int, ...]
    amount_minor: int
    #: Refunds of these gifts dated on or before the period's last day.
    refunded_minor: int

    @property
    def count(self) -> int:
        return len(self.gift_ids)


@dataclass(frozen=True)
class SharePoint:
    on: date
    totals: WindowTotals

    @property
    def value(self) -> Fraction:
        return share(self.totals.lab_minor, self.totals.total_minor)


@dataclass(frozen=True)
class CorporateAcceptance:
    gift_id: int
    #: The covered organisations the money comes from (never a person).
    organizations: tuple[str, ...]
    received_on: date
    amount_minor: int
    refunded_minor: int
    decision_id: int
    decision_kind: str
    decided_on: date
    reason: str


@dataclass(frozen=True)
class PromiseException:
    """An accepted gift against a public promise: never a donor's name or a reviewer's note."""

    gift_id: int
    rule: str
    received_on: date
    amount_minor: int
    refunded_minor: int
    decision_kind: str
    decided_on: date
    #: The accepting decision's public_note; None if it has none.
    public_justification: str | None


@dataclass(frozen=True)
class InKindItem:
    id: int
    organization: str
    description: str
    purpose: str
    start_date: date
    end_date: date | None
    estimated_value_minor: int | None
    currency: str | None


@dataclass(frozen=True)
class InKindGift:
    gift_id: int
    organizations: tuple[str, ...]
    received_on: date
    description: str | None
    value_minor: int


@dataclass(frozen=True)
class Disclosure:
    start: date
    end: date
    organization_name: str
    policy: Policy
    currency: str
    audit_head: str
    lab_evaluation_payments: GiftTally
    senior_decision_maker_gifts: GiftTally
    share_at_end: SharePoint
    share_max: SharePoint
    lab_corporate: tuple[CorporateAcceptance, ...]
    in_kind: tuple[InKindItem, ...]
    in_kind_gifts: tuple[InKindGift, ...]
    statements: tuple[tuple[str, str, str], ...] = field(default=())
    exceptions: tuple[PromiseException, ...] = field(default=())


# --- the lab-employee share, day by day (app.ledger.windows.daily_windows) ---------------------

def share_extremes(windows: list[WindowTotals]) -> tuple[SharePoint, SharePoint]:
    """(the last day's share, the highest share and the first day it was reached).

    "Reached" as published: the first day whose share, truncated to 6 places, equals the
    highest truncated share. A reader can check that day with the compliance summary (which
    shows the same 6 places); a later day only higher in the 7th place would not be.
    """
    last = SharePoint(windows[-1].end, windows[-1])
    published = share_text(max(share(w.lab_minor, w.total_minor) for w in windows))
    peak = next(w for w in windows if share_text(share(w.lab_minor, w.total_minor)) == published)
    return last, SharePoint(peak.end, peak)


# --- gifts and their decisions ---------------------------------------------------------------

def fired(reasons: list, rule: str) -> bool:
    return any(isinstance(r, dict) and r.get("rule") == rule and r.get("fired") for r in reasons)


@dataclass
class _GiftDecisions:
    gift: Gift
    screening: Decision | None = None
    latest: Decision | None = None


def _accepted_gifts(session: Session, start: date, end: date) -> list[_GiftDecisions]:
    """Gifts accepted now and received in the period, each with its decisions that matter."""
    found: dict[int, _GiftDecisions] = {}
    for decision, gift in session.execute(
        select(Decision, Gift).join(Gift, Gift.id == Decision.gift_id)
        .where(Gift.status == "accepted", Gift.received_on >= start, Gift.received_on <= end)
        .order_by(Decision.gift_id, Decision.id)
    ).all():
        item = found.setdefault(gift.id, _GiftDecisions(gift))
        if item.screening is None and decision.kind == "screening":
            item.screening = decision
        item.latest = decision
    return [found[k] for k in sorted(found)]


def _refunded_by(session: Session, gift_ids: list[int], end: date) -> dict[int, int]:
    totals: dict[int, int] = {}
    if not gift_ids:
        return totals
    for gift_id, amount in session.execute(
        select(Refund.gift_id, Refund.reporting_amount_minor)
        .where(Refund.gift_id.in_(gift_ids), Refund.refunded_on <= end)
    ).all():
        totals[gift_id] = totals.get(gift_id, 0) + amount
    return totals


def _tally(items: list[_GiftDecisions], refunded: dict[int, int]) -> GiftTally:
    ids = tuple(i.gift.id for i in items)
    return GiftTally(
        gift_ids=ids,
        amount_minor=sum(i.gift.reporting_amount_minor for i in items),
        refunded_minor=sum(refunded.get(gift_id, 0) for gift_id in ids),
    )


def _covered_names(session: Session, covered: CoveredOrganizations, gift: Gift) -> tuple[str, ...]:
    """Covered organisations among who the gift comes from: its payer and its attributions.
    People are never named; only organisation donors linked to a covered organisation."""
    donor_ids = {gift.donor_id} | set(session.execute(
        select(Attribution.donor_id).where(Attribution.gift_id == gift.id)
    ).scalars())
    names = set()
    for donor in session.execute(select(Donor).where(Donor.id.in_(donor_ids))).scalars():
        if donor.type == "organization" and covered.covered(donor.organization_id):
            names.add(covered.name(donor.organization_id))
    return tuple(sorted(n for n in names if n))


def _in_kind(session: Session, covered: CoveredOrganizations, start: date,
             end: date) -> tuple[InKindItem, ...]:
    rows = session.execute(
        select(InKindArrangement, Organization.name)
        .join(Organization, Organization.id == InKindArrangement.organization_id)
        .where(InKindArrangement.start_date <= end)
        .where((InKindArrangement.end_date.is_(None)) | (InKindArrangement.end_date >= start))
        .order_by(InKindArrangement.start_date, InKindArrangement.id)
    ).all()
    return tuple(
        InKindItem(
            id=item.id, organization=name, description=item.description, purpose=item.purpose,
            start_date=item.start_date, end_date=item.end_date,
            estimated_value_minor=item.estimated_value_minor, currency=item.currency,
        )
        for item, name in rows if covered.covered(item.organization_id)
    )


# --- the disclosure ---------------------------------------------------------------------------

def conflict_disclosure(session: Session, start: date, end: date, policy: Policy,
                        currency: str, organization_name: str = "") -> Disclosure:
    """Every figure of the disclosure for the period [start, end], from the ledger as it is."""
    check_period(start, end)
    head = chain_head(session)
    gifts = _accepted_gifts(session, start, end)
    evaluation = [g for g in gifts if g.latest and fired(g.latest.reasons, "lab_evaluation_payment")]
    senior = [g for g in gifts if g.latest and fired(g.latest.reasons, "senior_decision_maker")]
    corporate = [
        g for g in gifts
        if g.screening is not None and fired(g.screening.reasons, "lab_corporate_money")
        and g.latest is not None and g.latest.kind in HUMAN_DECISIONS
    ]
    in_kind_gifts = [g for g in gifts if g.gift.kind == "in_kind" and g.gift.disclose]
    refunded = _refunded_by(session, sorted({g.gift.id for g in evaluation + senior + corporate}),
                            end)
    covered = CoveredOrganizations(session)

    windows = daily_windows(session, start, end, policy.window_days)
    at_end, peak = share_extremes(windows)

    return Disclosure(
        start=start,
        end=end,
        organization_name=organization_name,
        policy=policy,
        currency=currency,
        audit_head=head,
        lab_evaluation_payments=_tally(evaluation, refunded),
        senior_decision_maker_gifts=_tally(senior, refunded),
        share_at_end=at_end,
        share_max=peak,
        lab_corporate=tuple(
            CorporateAcceptance(
                gift_id=g.gift.id,
                organizations=_covered_names(session, covered, g.gift),
                received_on=g.gift.received_on,
                amount_minor=g.gift.reporting_amount_minor,
                refunded_minor=refunded.get(g.gift.id, 0),
                decision_id=g.latest.id,
                decision_kind=g.latest.kind,
                decided_on=g.latest.created_at.date(),
                # Never the internal note: only what the reviewer wrote to be published.
                reason=g.latest.public_note or NO_PUBLIC_JUSTIFICATION,
            )
            for g in corporate
        ),
        exceptions=tuple(
            PromiseException(
                gift_id=g.gift.id, rule=rule, received_on=g.gift.received_on,
                amount_minor=g.gift.reporting_amount_minor,
                refunded_minor=refunded.get(g.gift.id, 0), decision_kind=g.latest.kind,
                decided_on=g.latest.created_at.date(), public_justification=g.latest.public_note,
            )
            for g in gifts for rule in PROMISE_RULES
            if g.latest is not None and fired(g.latest.reasons, rule)
        ),
        in_kind=_in_kind(session, covered, start, end),
        in_kind_gifts=tuple(
            InKindGift(
                gift_id=g.gift.id,
                organizations=_covered_names(session, covered, g.gift),
                received_on=g.gift.received_on,
                description=g.gift.description,
                value_minor=g.gift.reporting_amount_minor,
            )
            for g in in_kind_gifts
        ),
        # A rule that needs settings this version does not give (a document from before the
        # rule) never fires: publishing its promise would be false.
        statements=tuple((rule, policy.outcomes[rule], policy.statement(rule)) for rule in RULE_IDS
                         if RULE_BY_ID[rule].read_settings is None or policy.settings.get(rule)),
    )


# --- the JSON form -----------------------------------------------------------------------------

def sources(start: date, end: date) -> dict[str, str]:
    """How to reproduce each figure, from the ledger tables or the JSON API."""
    period = f"received_on between {start.isoformat()} and {end.isoformat()} (both included)"
    accepted = f"gifts with status 'accepted' and {period}"
    latest = ("whose latest decision (the one that accepted the gift) lists rule '{rule}' with "
              "fired=true; amount = sum of reporting_amount; refunded = their refunds dated on or "
              f"before {end.isoformat()}. API: GET /api/v1/gifts?status=accepted, then "
              "GET /api/v1/gifts/{{id}} -> decision.reasons")
    return {
        "policy": "The policy version in force when the disclosure was made: policies/policy.toml "
                  "or the version stored by an administrator, [statements] and [outcomes].",
        "lab_evaluation_payments_accepted":
            f"{accepted} {latest.format(rule='lab_evaluation_payment')}",
        "senior_decision_maker_gifts_accepted":
            f"{accepted} {latest.format(rule='senior_decision_maker')}",
        "lab_employee_share_at_end":
            f"GET /api/v1/compliance/summary?as_of={end.isoformat()} -> lab_employee_share "
            "(lab-employee funding / all accepted cash funding in the trailing window ending "
            "that day, refunds dated by then applied)",
        "lab_employee_share_max":
            "The highest of GET /api/v1/compliance/summary?as_of=DAY -> lab_employee_share "
            f"over every DAY from {start.isoformat()} to {end.isoformat()}; `on` is the first "
            "DAY whose lab_employee_share (6 places) equals that value",
        "lab_corporate_accepted":
            f"{accepted} whose screening decision lists rule 'lab_corporate_money' with "
            "fired=true and whose latest decision is of kind 'review' or 'override'; reason = "
            "that decision's public_note (never its internal note), or "
            f"'{NO_PUBLIC_JUSTIFICATION}' if it has none. API: GET /api/v1/gifts/{{id}} -> "
            "decisions",
        "exceptions_accepted":
            f"{accepted} whose latest decision lists rule 'lab_evaluation_payment' or "
            "'senior_decision_maker' with fired=true (the gifts the two counts above count), "
            "one entry per gift and rule; public_justification = that decision's public_note "
            "(null if none). API: GET /api/v1/gifts/{id} -> decisions",
        "in_kind":
            "GET /api/v1/in-kind: arrangements whose organisation is a covered lab or an "
            "affiliate of one (GET /api/v1/organizations/{id}: covered_lab, parent_id), with "
            f"start_date on or before {end.isoformat()} and end_date empty or on or after "
            f"{start.isoformat()}",
        "in_kind_gifts":
            f"{accepted} of kind 'in_kind' with disclose=true (the policy's lab_in_kind rule "
            "fired). API: GET /api/v1/gifts?status=accepted -> kind, disclose",
    }


def disclosure_content(d: Disclosure) -> dict:
    """The disclosure as plain JSON: amounts as decimal strings, shares truncated to 6 places."""
    money = lambda minor: format_amount(minor, d.currency)  # noqa: E731

    def tally(t: GiftTally) -> dict:
        return {"count": t.count, "amount": money(t.amount_minor),
                "refunded": money(t.refunded_minor), "gift_ids": list(t.gift_ids)}

    return {
        "title": TITLE,
        "organization": d.organization_name,
        "period": {"from": d.start.isoformat(), "to": d.end.isoformat()},
        "policy_version": d.policy.version,
        "policy_name": d.policy.name,
        "currency": d.currency,
        "audit_chain_head": d.audit_head,
        "policy": [{"rule": rule, "outcome": outcome, "statement": text}
                   for rule, outcome, text in d.statements],
        "lab_evaluation_payments_accepted": tally(d.lab_evaluation_payments),
        "senior_decision_maker_gifts_accepted": tally(d.senior_decision_maker_gifts),
        "lab_employee_share_at_end": share_text(d.share_at_end.value),
        "lab_employee_share_max": {"value": share_text(d.share_max.value),
                                   "on": d.share_max.on.isoformat()},
        "lab_employee_cap": str(d.policy.cap),
        "lab_employee_window_days": d.policy.window_days,
        "funding_at_end": {"total": money(d.share_at_end.totals.total_minor),
                           "lab_employee": money(d.share_at_end.totals.lab_minor)},
        "exceptions_accepted": [
            {"gift_id": e.gift_id, "rule": e.rule, "on": e.received_on.isoformat(),
             "amount": money(e.amount_minor), "refunded": money(e.refunded_minor),
             "decided_on": e.decided_on.isoformat(), "decision_kind": e.decision_kind,
             "public_justification": e.public_justification}
            for e in d.exceptions
        ],
        "lab_corporate_accepted": [
            {"gift_id": c.gift_id, "organizations": list(c.organizations),
             "amount": money(c.amount_minor), "refunded": money(c.refunded_minor),
             "on": c.received_on.isoformat(), "decided_on": c.decided_on.isoformat(),
             "decision_kind": c.decision_kind, "reason": c.reason}
            for c in d.lab_corporate
        ],
        "in_kind": [
            {"id": i.id, "organization": i.organization, "description": i.description,
             "purpose": i.purpose, "start_date": i.start_date.isoformat(),
             "end_date": i.end_date.isoformat() if i.end_date else None,
             "estimated_value": format_amount(i.estimated_value_minor, i.currency)
             if i.estimated_value_minor is not None and i.currency else None,
             "currency": i.currency if i.estimated_value_minor is not None else None}
            for i in d.in_kind
        ],
        "in_kind_gifts": [
            {"gift_id": g.gift_id, "organizations": list(g.organizations),
             "on": g.received_on.isoformat(), "description": g.description,
             "value": money(g.value_minor)}
            for g in d.in_kind_gifts
        ],
        "sources": sources(d.start, d.end),
    }


def canonical_json(content: dict) -> str:
    """Sorted keys, no spaces, UTF-8 text: the same content always gives the same bytes."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- publishing -------------------------------------------------------------------------------

def publish(session: Session, start: date, end: date, policy: Policy, currency: str,
            organization_name: str, actor: Actor, keys: AuditKeys | None = None,
            signature_required: bool = False) -> PublishedDisclosure:
    """Freeze the disclosure for a period: its canonical JSON, that JSON's SHA-256 and the
    audit chain head it was computed at. Computed under the ledger lock, so no money moves
    between the figures and the head; later changes to the ledger never touch it.

    With a signing key, a signed checkpoint of the chain (ending at this disclosure's
    `disclosure.published` entry) is written in the same transaction. Without one it is
    refused when `signature_required` (production), else published unsigned."""
    check_period(start, end)
    signing = keys is not None and keys.signer is not None
    if signature_required and not signing:
        raise SigningUnavailable(
            "no audit signing key is configured (AUDIT_SIGNING_KEY_FILE or AUDIT_SIGNING_KEY): "
            "in production a disclosure is published only with a signed checkpoint")
    today = org_today(session)
    if end > today:  # a period still to come would be published as zeros and never corrected
        raise PeriodError(f"the period ends on {end.isoformat()}, after today "
                          f"({today.isoformat()}); publish a disclosure once its period is over")
    with ledger_write(session):
        result = conflict_disclosure(session, start, end, policy, currency, organization_name)
        text = canonical_json(disclosure_content(result))
        record = PublishedDisclosure(
            period_start=start, period_end=end, content=text, content_hash=content_hash(text),
            audit_head=result.audit_head, policy_version=policy.version,
            published_by_id=actor.user_id,
        )
        session.add(record)
        session.flush()
        audit.append(session, actor, "disclosure.published", "published_disclosure", record.id, {
            "period_start": start, "period_end": end, "content_hash": record.content_hash,
            "audit_head": record.audit_head, "policy_version": policy.version,
            # Said before the checkpoint is taken: a signed disclosure whose checkpoint row
            # is later deleted fails verification instead of passing as unsigned.
            "signed": signing,
        }, sealed=[record])
        if signing:
            checkpoints.take(session, keys, record)
    return record


def published_content(record: PublishedDisclosure) -> dict:
    return json.loads(record.content)


def verify(record: PublishedDisclosure) -> bool:
    """The stored content still has the hash it was published with (the row against itself:
    the public page's "(verified)" is checkpoints.check_disclosure)."""
    return content_hash(record.content) == record.content_hash


def previous_published(session: Session, record: PublishedDisclosure) -> PublishedDisclosure | None:
    return session.execute(
        select(PublishedDisclosure).where(PublishedDisclosure.id < record.id)
        .order_by(PublishedDisclosure.id.desc()).limit(1)
    ).scalar_one_or_none()


def latest_published(session: Session) -> PublishedDisclosure | None:
    return session.execute(
        select(PublishedDisclosure).order_by(PublishedDisclosure.id.desc()).limit(1)
    ).scalar_one_or_none()


# --- comparing two disclosures ----------------------------------------------------------------

@dataclass(frozen=True)
class FigureChange:
    figure: str
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _figures(content: dict) -> dict[str, str]:
    """The figures a reader compares, each as one line of text."""
    ev = content["lab_evaluation_payments_accepted"]
    sdm = content["senior_decision_maker_gifts_accepted"]
    peak = content["lab_employee_share_max"]
    currency = content.get("currency", "")
    figures = {
        "Period": f"{content['period']['from']} to {content['period']['to']}",
        "Policy version": content.get("policy_version", ""),
        "Lab payments for evaluations accepted": f"{ev['count']} ({ev['amount']} {currency})",
        "Gifts from senior decision-makers accepted": f"{sdm['count']} ({sdm['amount']} {currency})",
        "Lab-employee share at period end": content["lab_employee_share_at_end"],
        "Highest lab-employee share in the period": f"{peak['value']} on {peak['on']}",
        "Lab corporate money accepted by a reviewer":
            f"{len(content['lab_corporate_accepted'])} ("
            + ", ".join(f"{c['amount']} on {c['on']}" for c in content["lab_corporate_accepted"])
            + ")",
        "In-kind arrangements with labs":
            f"{len(content['in_kind'])} ("
            + ", ".join(f"{i['organization']}: {i['description']}" for i in content["in_kind"])
            + ")",
    }
    if "in_kind_gifts" in content:
        figures["In-kind gifts from labs"] = str(len(content["in_kind_gifts"]))
    if "exceptions_accepted" in content:  # disclosures published before it have none
        figures["Exceptions to a public promise"] = (
            f"{len(content['exceptions_accepted'])} ("
            + ", ".join(f"{e['amount']} on {e['on']}" for e in content["exceptions_accepted"])
            + ")")
    return figures


def compare(before: dict | None, after: dict) -> list[FigureChange]:
    """Each figure of `after` next to the same figure of `before` ("" where there is none)."""
    old = _figures(before) if before else {}
    return [FigureChange(name, old.get(name, ""), value) for name, value in _figures(after).items()]

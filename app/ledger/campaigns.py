"""Campaigns, appeals and funds: creating and closing them, what a gift's designation may
name, and how much each has raised against its goal.

Creating or closing one is audited and sealed like every record that shapes money (a
fund's restricted flag decides what the organisation may spend). The entries carry codes,
flags and figures, never the names and purposes people typed. Writes take the ledger lock
because the audit chain is appended under it; an audited write also tells a gift whose
facts were read before the lock to read them again (gifts.PreparedGift), so a gift
designated meanwhile is checked against the fund as it now is (restricted or not).

A closed campaign, appeal or fund takes no new gift from staff: the staff form, the JSON
API and the CSV import ask the door for an open designation (open_only), and a gift naming
a closed one is refused on its field (reopen it to record a late cheque). The renewals of a
monthly donation started under a campaign keep arriving after it closes: the Stripe webhook
records each paid invoice of a donation already made, not a new ask, so it names the
campaign with open_only off (as do corrections, which re-record a gift already
designated). The donate link stops offering a closed campaign.

Raised money is accepted cash net of refunds (app.ledger.giving), in the goal's currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from sqlalchemy import Boolean, Integer, cast, func, literal, null, select, union_all
from sqlmodel import Session

from app.db import rows
from app.db.locking import ledger_write
from app.errors import Duplicate, NotFound, ValidationFailed
from app.ledger import audit, row_hashes
from app.ledger.audit import Actor
from app.ledger.giving import NetCash
from models import Appeal, Campaign, Fund, Gift, GiftDesignation
from models.money import MoneyError, format_amount, parse_amount
from models.schemas import AppealCreate, CampaignCreate, FundCreate, GiftCreate

#: The three kinds, by the name the API and the pages use.
MODELS: dict[str, type[Campaign] | type[Appeal] | type[Fund]] = {
    "campaign": Campaign, "appeal": Appeal, "fund": Fund}
#: The designation column that names each kind.
COLUMNS = {"campaign": GiftDesignation.campaign_id, "appeal": GiftDesignation.appeal_id,
           "fund": GiftDesignation.fund_id}


#: The largest goal, in minor units (10,000,000,000,000.00 USD).
MAX_GOAL_MINOR = 10**15


@dataclass(frozen=True)
class Designation:
    """What a new gift carries, checked: an appeal's campaign filled in; the fund's
    restricted flag (for the gift's purpose)."""

    campaign_id: int | None
    appeal_id: int | None
    fund_id: int | None

    def values(self, gift_id: int) -> dict:
        return {"gift_id": gift_id, "campaign_id": self.campaign_id,
                "appeal_id": self.appeal_id, "fund_id": self.fund_id}

    def entry(self) -> dict:
        """Its part of the gift.recorded audit entry (ids only)."""
        return {k: v for k, v in (("campaign_id", self.campaign_id),
                                  ("appeal_id", self.appeal_id),
                                  ("fund_id", self.fund_id)) if v is not None}


def _goal(data, currency: str) -> int | None:
    if data.goal is None or data.goal == "":
        return None
    try:
        minor = parse_amount(data.goal, currency)
    except MoneyError as error:
        raise ValidationFailed({"goal": [str(error)]}) from None
    if minor > MAX_GOAL_MINOR:  # a BIGINT column, and sums of goals, stay far from overflow
        raise ValidationFailed({"goal": [
            f"at most {format_amount(MAX_GOAL_MINOR, currency)} {currency}"]})
    return minor


def _refuse_taken_code(session: Session, model, code: str) -> None:
    existing = session.execute(select(model.id).where(model.code == code)).scalar()
    if existing is not None:
        raise Duplicate("code", existing)


def _created(session: Session, actor: Actor, kind: str, row, extra: dict):
    session.flush()
    audit.append(session, actor, f"{kind}.created", kind, row.id, {
        "code": row.code, "active": row.active,
        "goal": None if row.goal_minor is None else format_amount(row.goal_minor, row.currency),
        "currency": row.currency, **extra}, sealed=[row])
    return row


def create_campaign(session: Session, data: CampaignCreate, actor: Actor,
                    currency: str) -> Campaign:
    with ledger_write(session):
        _refuse_taken_code(session, Campaign, data.code)
        row = Campaign(code=data.code, name=data.name, description=data.description or None,
                       goal_minor=_goal(data, currency), currency=currency,
                       starts_on=data.starts_on, ends_on=data.ends_on, active=data.active,
                       created_by_id=actor.user_id)
        session.add(row)
        return _created(session, actor, "campaign", row,
                        {"starts_on": data.starts_on, "ends_on": data.ends_on})


def create_appeal(session: Session, data: AppealCreate, actor: Actor, currency: str) -> Appeal:
    with ledger_write(session):
        _refuse_taken_code(session, Appeal, data.code)
        if data.campaign_id is not None and session.get(Campaign, data.campaign_id) is None:
            raise ValidationFailed({"campaign_id": ["no such campaign"]})
        row = Appeal(code=data.code, name=data.name, campaign_id=data.campaign_id,
                     channel=data.channel, sent_on=data.sent_on,
                     goal_minor=_goal(data, currency), currency=currency, active=data.active,
                     created_by_id=actor.user_id)
        session.add(row)
        return _created(session, actor, "appeal", row,
                        {"campaign_id": data.campaign_id, "channel": data.channel})


def create_fund(session: Session, data: FundCreate, actor: Actor, currency: str) -> Fund:
    with ledger_write(session):
        _refuse_taken_code(session, Fund, data.code)
        row = Fund(code=data.code, name=data.name, restricted=data.restricted,
                   purpose=data.purpose or None, goal_minor=_goal(data, currency),
                   currency=currency, active=data.active, created_by_id=actor.user_id)
        session.add(row)
        return _created(session, actor, "fund", row, {"restricted": data.restricted})


def set_active(session: Session, kind: str, row_id: int, active: bool, actor: Actor):
    """Close (or reopen) a campaign, appeal or fund. A closed campaign no longer comes from
    the donate link; gifts already designated keep their designation."""
    model = MODELS[kind]
    with ledger_write(session):
        row = session.get(model, row_id)
        if row is None:
            raise NotFound(kind, row_id)
        if row.active != active:
            row.active = active
            session.flush()
            audit.append(session, actor, f"{kind}.{'reopened' if active else 'closed'}", kind,
                         row.id, {"code": row.code}, sealed=[row])
    return row


# --- a gift's designation -------------------------------------------------------------------

def _named(data: GiftCreate):
    """The designation lookup of one gift: one statement, a row per id given."""
    # Typed NULLs: PostgreSQL would take two bare NULLs in a UNION as text.
    no_campaign, no_flag = cast(null(), Integer), cast(null(), Boolean)
    parts = []
    if data.campaign_id is not None:
        parts.append(select(literal("campaign").label("kind"), Campaign.id,
                            no_campaign.label("campaign_id"), no_flag.label("restricted"),
                            Campaign.active.label("active"))
                     .where(Campaign.id == data.campaign_id))
    if data.appeal_id is not None:
        parts.append(select(literal("appeal"), Appeal.id, Appeal.campaign_id, no_flag,
                            Appeal.active)
                     .where(Appeal.id == data.appeal_id))
    if data.fund_id is not None:
        parts.append(select(literal("fund"), Fund.id, no_campaign, Fund.restricted, Fund.active)
                     .where(Fund.id == data.fund_id))
    return parts[0] if len(parts) == 1 else union_all(*parts)


def closed_message(kind: str, row_id: int) -> str:
    return (f"the {kind} {row_id} is closed: it takes no new gifts (reopen it on the "
            "Campaigns page to record a late one)")


def resolve_designation(session: Session, data: GiftCreate, *,
                        open_only: bool = False) -> Designation | None:
    """The designation a new gift's data asks for, checked; None (and no statement) when it
    names none. Refuses an unknown id, an appeal of another campaign than the one named,
    a gift for restricted purposes to an unrestricted fund, and (open_only: a new gift from
    staff) a closed campaign, appeal or fund."""
    if data.campaign_id is None and data.appeal_id is None and data.fund_id is None:
        return None
    named = session.execute(_named(data)).all()
    found = {kind: (campaign_id, restricted) for kind, _id, campaign_id, restricted, _ in named}
    errors: dict[str, list[str]] = {}
    for kind in MODELS:
        if getattr(data, f"{kind}_id") is not None and kind not in found:
            errors[f"{kind}_id"] = [f"no such {kind}"]
    if open_only:
        for kind, row_id, _campaign, _restricted, active in named:
            if not active:
                errors[f"{kind}_id"] = [closed_message(kind, row_id)]
    campaign_id = data.campaign_id
    if "appeal" in found and found["appeal"][0] is not None:
        appeal_campaign = found["appeal"][0]
        if campaign_id is None:
            campaign_id = appeal_campaign  # the appeal brings its campaign
        elif campaign_id != appeal_campaign:
            errors["appeal_id"] = [f"the appeal belongs to campaign {appeal_campaign}, "
                                   f"not {campaign_id}"]
    if "fund" in found and data.purpose == "restricted" and not found["fund"][1]:
        errors["fund_id"] = ["a gift for restricted purposes goes to a restricted fund "
                             "(or to none)"]
    if errors:
        raise ValidationFailed(errors)
    return Designation(campaign_id, data.appeal_id, data.fund_id)


def insert_designation(session: Session, designation: Designation, gift_id: int) -> list:
    """Write a gift's designation (one INSERT); its seal for the gift's audit entry."""
    values = designation.values(gift_id)
    (row_id,) = rows.insert_each(session, GiftDesignation, [values])
    return row_hashes.seal_values(GiftDesignation, {**values, "id": row_id})


def active_campaign(session: Session, code: str, today: date) -> Campaign | None:
    """The campaign a donate link names, if it is open today; else None. What the link
    says is a claim: an unknown, closed or finished code is ignored, never an error."""
    code = (code or "").strip().lower()
    if not code or len(code) > 60:
        return None
    campaign = session.execute(select(Campaign).where(Campaign.code == code)).scalar()
    if campaign is None or not campaign.active or campaign.starts_on > today:
        return None
    if campaign.ends_on is not None and campaign.ends_on < today:
        return None
    return campaign


# --- progress --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Progress:
    """How much one campaign, appeal or fund has raised (accepted cash net of refunds)."""

    kind: str
    id: int
    code: str
    name: str
    active: bool
    currency: str
    goal_minor: int | None
    raised_minor: int
    gifts: int
    donors: int
    #: Funds only: restricted money, reported apart.
    restricted: bool = False

    @property
    def share_of_goal(self) -> Fraction | None:
        return Fraction(self.raised_minor, self.goal_minor) if self.goal_minor else None


def raised(session: Session, kind: str, currency: str, *, ids: list[int] | None = None,
           start: date | None = None, end: date | None = None) -> dict[int, tuple[int, int, int]]:
    """id -> (raised minor, gifts, donors) per campaign, appeal or fund, from the gifts
    received in [start, end] (both optional). One grouped query."""
    column = COLUMNS[kind]
    scope = []
    if start is not None:
        scope.append(Gift.received_on >= start)
    if end is not None:
        scope.append(Gift.received_on <= end)
    cash = NetCash(currency, *scope)
    query = (cash.select(column, func.sum(cash.net), func.count(),
                         func.count(Gift.donor_id.distinct()))
             .join(GiftDesignation, GiftDesignation.gift_id == Gift.id)
             .where(column.is_not(None)).group_by(column))
    if ids is not None:
        query = query.where(column.in_(ids))
    return {row_id: (int(total or 0), int(n), int(donors))
            for row_id, total, n, donors in session.execute(query)}


def progress(session: Session, kind: str, currency: str, *, ids: list[int] | None = None,
             start: date | None = None, end: date | None = None,
             of_campaign: int | None = None) -> list[Progress]:
    """Every campaign (appeal, fund) with what it has raised, open ones first, newest first;
    or those in `ids`; or (appeals) the appeals of one campaign."""
    model = MODELS[kind]
    query = select(model).order_by(model.active.desc(), model.id.desc())
    if ids is not None:
        query = query.where(model.id.in_(ids))
    if of_campaign is not None:
        query = query.where(Appeal.campaign_id == of_campaign)
    items = session.execute(query).scalars().all()
    totals = raised(session, kind, currency, ids=[i.id for i in items], start=start, end=end) \
        if items else {}
    return [Progress(kind, i.id, i.code, i.name, i.active, i.currency, i.goal_minor,
                     *totals.get(i.id, (0, 0, 0)), restricted=getattr(i, "restricted", False))
            for i in items]


def undesignated(session: Session, kind: str, currency: str, *, start: date | None = None,
                 end: date | None = None) -> tuple[int, int]:
    """(raised minor, gifts) of the giving that names no campaign (appeal, fund)."""
    column = COLUMNS[kind]
    scope = []
    if start is not None:
        scope.append(Gift.received_on >= start)
    if end is not None:
        scope.append(Gift.received_on <= end)
    cash = NetCash(currency, *scope)
    total, n = session.execute(
        cash.select(func.coalesce(func.sum(cash.net), 0), func.count())
        .outerjoin(GiftDesignation, GiftDesignation.gift_id == Gift.id)
        .where(column.is_(None))).one()
    return int(total), int(n)


def by_id(session: Session, kind: str, row_id: int):
    row = session.get(MODELS[kind], row_id)
    if row is None:
        raise NotFound(kind, row_id)
    return row


def choices(session: Session, kind: str, *, active_only: bool = False) -> list[tuple[int, str]]:
    """(id, "name (code)") for a form's select, active ones first."""
    model = MODELS[kind]
    query = select(model.id, model.name, model.code, model.active).order_by(
        model.active.desc(), model.name)
    if active_only:
        query = query.where(model.active.is_(True))
    return [(i, f"{name} ({code})" + ("" if active else ", closed"))
            for i, name, code, active in session.execute(query)]


def designation_of(session: Session, gift_ids: list[int]) -> dict[int, GiftDesignation]:
    """gift id -> its designation, for the gifts that have one."""
    if not gift_ids:
        return {}
    return {d.gift_id: d for d in session.execute(
        select(GiftDesignation).where(GiftDesignation.gift_id.in_(gift_ids))).scalars()}

"""Validated inputs (the ...Create family). A JSON body or a form becomes one of
these before anything touches a table. They check shape only: formats, ranges,
references to the currency table. Existence of ids and compliance are the
ledger's business."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema
from sqlmodel import SQLModel

from models.campaigns import APPEAL_CHANNELS, CODE_PATTERN
from models.inkind import IN_KIND_PURPOSES
from models.money import MoneyError, normalise_currency, parse_amount, parse_rate
from models.parties import AFFILIATION_KINDS, DONOR_CATEGORIES
from models.relationships import RELATIONSHIP_KINDS
from models.segments import TAG_PATTERN
from models.users import ROLES

PPM = 1_000_000
#: The most people one gift may be attributed to. Joint gifts and donor-advised funds name a
#: few; a bound keeps one request from holding the ledger lock while it checks thousands.
MAX_ATTRIBUTIONS = 100
_FRACTION = re.compile(r"^(0(\.\d{1,6})?|1(\.0{1,6})?)$")


def iso_date(value: object) -> object:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be a date in the form YYYY-MM-DD")
    return date.fromisoformat(value)


IsoDate = Annotated[date, BeforeValidator(iso_date)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=1000)]


class Input(SQLModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _computed(**kwargs):
    """A field the model's own validators set, never read from the input: its name is
    not an input name, so a caller who sends it gets "Extra inputs are not permitted"."""
    return Field(exclude=True, validation_alias="(computed)", **kwargs)


def fraction_to_ppm(text: object) -> int:
    if not isinstance(text, str) or not _FRACTION.match(text.strip()):
        raise ValueError("fraction must be a decimal string in (0, 1] with at most 6 places")
    ppm = int(Decimal(text.strip()) * PPM)
    if ppm <= 0:
        raise ValueError("fraction must be greater than 0")
    return ppm


class OrganizationCreate(Input):
    name: Name
    covered_lab: bool = False
    aliases: list[Annotated[str, Field(min_length=1, max_length=200)]] = []
    parent_id: int | None = None


class OrganizationPatch(Input):
    """PATCH /organizations/<id>: only the fields sent change (parent_id null removes it)."""

    name: Name | None = None
    covered_lab: bool | None = None
    aliases: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = None
    parent_id: int | None = None


class DonorCreate(Input):
    type: Literal["person", "organization"]
    name: Name
    email: Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    organization_id: int | None = None
    category: Literal[DONOR_CATEGORIES] | None = None  # type: ignore[valid-type]
    anonymous: bool = False
    #: The donor agreed to be named on the public funding page (default: private).
    public_name_consent: bool = False
    #: Where known: compared when matching identities (app.ledger.identity).
    phone: Annotated[str, Field(max_length=40)] | None = None
    postal_address: Annotated[str, Field(max_length=500)] | None = None

    @model_validator(mode="after")
    def _category(self):
        if self.category is None:
            self.category = "individual" if self.type == "person" else "other"
        if self.type == "person" and self.category != "individual":
            raise ValueError("a person's category is 'individual'")
        if self.type == "organization" and self.category == "individual":
            raise ValueError("an organisation cannot have category 'individual'")
        return self


class DonorCreateConfirmed(DonorCreate):
    """A new donor as the API takes it: a reviewer or admin who has checked that a person
    sharing an e-mail address with a recorded donor is someone else names that donor and
    says why (otherwise the API answers 409 with existing_donor_id)."""

    different_person_from: int | None = None
    reason: Annotated[str, Field(max_length=500)] | None = None


class DonorUpdate(Input):
    """The editable facts of a donor. Type and organisation are fixed at creation."""

    name: Name
    email: Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    category: Literal[DONOR_CATEGORIES]  # type: ignore[valid-type]
    anonymous: bool = False
    #: Left out: kept as it is (a form or client that does not know it changes nothing).
    public_name_consent: bool = False
    phone: Annotated[str, Field(max_length=40)] | None = None
    postal_address: Annotated[str, Field(max_length=500)] | None = None


class AffiliationCreate(Input):
    organization_id: int
    kind: Literal[AFFILIATION_KINDS] = "employee"  # type: ignore[valid-type]
    title: Annotated[str, Field(max_length=200)] | None = None
    senior_decision_maker: bool
    start_date: IsoDate
    end_date: IsoDate | None = None

    @model_validator(mode="after")
    def _ordered(self):
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self


class RelationshipCreate(Input):
    """A dated link from one person to another (app.ledger.relationships)."""

    related_donor_id: int
    kind: Literal[RELATIONSHIP_KINDS]  # type: ignore[valid-type]
    start_date: IsoDate
    end_date: IsoDate | None = None

    @model_validator(mode="after")
    def _ordered(self):
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self


class RelationshipEnd(Input):
    """The last day a relationship held."""

    end_date: IsoDate


Reason = Annotated[str, Field(min_length=3, max_length=2000)]


class GiftVoid(Input):
    """Why a gift recorded in error is voided (kept on the correction row, not the audit)."""

    reason: Reason


class GiftCorrectionCreate(Input):
    """What was wrong with a gift: each field given replaces the mistaken one's."""

    reason: Reason
    amount: str | None = None
    currency: str | None = None
    fx_rate: str | None = None
    received_on: IsoDate | None = None
    donor_id: int | None = None

    def changed_fields(self) -> set[str]:
        return {k for k in ("amount", "currency", "fx_rate", "received_on", "donor_id")
                if getattr(self, k) is not None}

    def changes_anything(self) -> bool:
        return bool(self.changed_fields() - {"fx_rate"}) or self.fx_rate is not None


class RosterEntryCreate(Input):
    """One row of a roster (app.ledger.rosters): someone at a lab who is not a donor."""

    name: Name
    title: Annotated[str, Field(max_length=200)] | None = None
    organization_id: int
    start_date: IsoDate
    end_date: IsoDate | None = None
    senior_decision_maker: bool = False
    source: Annotated[str, Field(min_length=1, max_length=500)]

    @model_validator(mode="after")
    def _ordered(self):
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self


class MatchVerdictCreate(Input):
    """A reviewer's answer about a possible match: the other record and why."""

    record: Literal["donor", "roster"]
    record_id: int
    reason: Annotated[str, Field(min_length=3, max_length=2000)]


class AttributionIn(Input):
    donor_id: int
    fraction: str
    fraction_ppm: SkipJsonSchema[int] = _computed(default=0)

    @model_validator(mode="after")
    def _ppm(self):
        try:
            self.fraction_ppm = fraction_to_ppm(self.fraction)
        except ValueError as error:
            raise ValueError(f"fraction: {error}") from None
        return self


_ZERO_AMOUNT = re.compile(r"^0+(\.0+)?$")


class GoodsIn(Input):
    """Goods or services given in return for a gift, and their good-faith fair-market value
    in the gift's currency ("0" when insubstantial)."""

    description: Annotated[str, Field(min_length=1, max_length=1000)]
    value: Annotated[str, Field(min_length=1, max_length=24)]


class TributeIn(Input):
    """A gift in honour or in memory of someone, and whom to tell of it (with the address
    the notification letter goes to)."""

    kind: Literal["honour", "memory"]
    name: Name
    notify_name: Name | None = None
    notify_address: Annotated[str, Field(min_length=1, max_length=500)] | None = None

    @model_validator(mode="after")
    def _addressed(self):
        if self.notify_address is not None and self.notify_name is None:
            raise ValueError("notify_name: say whom the notification letter is addressed to")
        return self


class GiftCreate(Input):
    donor_id: int
    amount: str
    currency: str
    received_on: IsoDate
    kind: Literal["cash", "in_kind"] = "cash"
    purpose: Literal["general", "restricted", "evaluation_services"] = "general"
    method: Annotated[str, Field(min_length=1, max_length=40)] = "other"
    description: Text | None = None
    fx_rate: str | None = None
    fx_source: Annotated[str, Field(max_length=100)] | None = None
    attributions: Annotated[list[AttributionIn], Field(max_length=MAX_ATTRIBUTIONS)] | None = None
    matching_gift_for: int | None = None
    pledge_id: int | None = None
    external_ref: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    #: What the gift was raised by and for (models.campaigns); each optional. An appeal
    #: inside a campaign brings its campaign with it.
    campaign_id: int | None = None
    appeal_id: int | None = None
    fund_id: int | None = None
    #: Goods or services given in return (the acknowledgement's quid-pro-quo statement).
    goods_or_services: GoodsIn | None = None
    #: In honour or in memory of someone.
    tribute: TributeIn | None = None
    #: Set from `amount` and `currency`; not part of the input.
    amount_minor: SkipJsonSchema[int] = _computed(default=0)
    #: Set from goods_or_services.value and `currency`.
    goods_value_minor: SkipJsonSchema[int | None] = _computed(default=None)

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value):
        try:
            return normalise_currency(value)
        except MoneyError as error:
            raise ValueError(str(error)) from None

    @field_validator("fx_rate", mode="before")
    @classmethod
    def _rate(cls, value):
        if value is None:
            return None
        try:
            parse_rate(value)
        except MoneyError as error:
            raise ValueError(str(error)) from None
        return value.strip()

    @field_validator("attributions", mode="before")
    @classmethod
    def _few_attributions(cls, value):
        # Before the items are parsed: a list far too long is refused without reading it.
        if isinstance(value, list) and len(value) > MAX_ATTRIBUTIONS:
            raise ValueError(f"at most {MAX_ATTRIBUTIONS} attributions per gift, not {len(value)}")
        return value

    @field_validator("attributions")
    @classmethod
    def _attributions(cls, value):
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one attribution, or leave the field out")
        if sum(a.fraction_ppm for a in value) != PPM:
            raise ValueError("attribution fractions must sum to exactly 1")
        if len({a.donor_id for a in value}) != len(value):
            raise ValueError("each donor may appear once in the attributions")
        return value

    @model_validator(mode="after")
    def _amount(self):
        try:
            self.amount_minor = parse_amount(self.amount, self.currency)
        except MoneyError as error:
            raise ValueError(f"amount: {error}") from None
        if self.goods_or_services is not None:
            if self.kind != "cash":
                raise ValueError("goods_or_services: only a cash gift states what was given "
                                 "in return (a non-cash gift is described, not valued)")
            self.goods_value_minor = goods_value_minor(self.goods_or_services.value,
                                                       self.currency)
        return self


def goods_value_minor(value: str, currency: str) -> int:
    """A goods-or-services value in minor units: like an amount, but zero is allowed (an
    insubstantial benefit is still described)."""
    text = value.strip()
    try:
        return parse_amount(text, currency)
    except MoneyError as error:
        if _ZERO_AMOUNT.match(text):
            return 0
        raise ValueError(f"goods_or_services.value: {error}") from None


Code = Annotated[str, Field(pattern=CODE_PATTERN)]


def _lower_code(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


class _GoalInput(Input):
    """code, name and an optional goal in the reporting currency (the ledger adds it)."""

    code: Annotated[Code, BeforeValidator(_lower_code)]
    name: Name
    goal: Annotated[str, Field(max_length=24)] | None = None
    active: bool = True


class CampaignCreate(_GoalInput):
    description: Annotated[str, Field(max_length=2000)] | None = None
    starts_on: IsoDate
    ends_on: IsoDate | None = None

    @model_validator(mode="after")
    def _ordered(self):
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise ValueError("ends_on: must not be before starts_on")
        return self


class AppealCreate(_GoalInput):
    campaign_id: int | None = None
    channel: Literal[APPEAL_CHANNELS] = "other"  # type: ignore[valid-type]
    sent_on: IsoDate | None = None


class FundCreate(_GoalInput):
    restricted: bool = False
    #: Required for a restricted fund: what the money may be spent on.
    purpose: Annotated[str, Field(max_length=1000)] | None = None

    @model_validator(mode="after")
    def _purpose(self):
        if self.restricted and not self.purpose:
            raise ValueError("purpose: a restricted fund says what its money is for")
        return self


class RefundCreate(Input):
    amount: str | None = None
    refunded_on: IsoDate | None = None
    reason: Annotated[str, Field(max_length=500)] | None = None


class InKindCreate(Input):
    organization_id: int
    description: Annotated[str, Field(min_length=1, max_length=1000)]
    purpose: Literal[IN_KIND_PURPOSES]  # type: ignore[valid-type]
    start_date: IsoDate
    end_date: IsoDate | None = None
    estimated_value: str | None = None
    currency: str | None = None
    estimated_value_minor: SkipJsonSchema[int | None] = _computed(default=None)

    @model_validator(mode="after")
    def _check(self):
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        if (self.estimated_value is None) != (self.currency is None):
            raise ValueError("estimated_value and currency go together")
        self.estimated_value_minor = None
        if self.estimated_value is not None:
            try:
                self.currency = normalise_currency(self.currency)
                self.estimated_value_minor = parse_amount(self.estimated_value, self.currency)
            except MoneyError as error:
                raise ValueError(f"estimated_value: {error}") from None
        return self


class InstalmentIn(Input):
    due_on: IsoDate
    amount: str


class PledgeCreate(Input):
    donor_id: int
    amount: str
    currency: str
    pledged_on: IsoDate
    description: Annotated[str, Field(max_length=500)] | None = None
    instalments: list[InstalmentIn] = []
    amount_minor: SkipJsonSchema[int] = _computed(default=0)
    instalment_minor: SkipJsonSchema[list[int]] = _computed(default_factory=list)

    @model_validator(mode="after")
    def _amounts(self):
        field = "currency"
        try:
            self.currency = normalise_currency(self.currency)
            field = "amount"
            self.amount_minor = parse_amount(self.amount, self.currency)
            self.instalment_minor = []
            for i, item in enumerate(self.instalments):
                field = f"instalments.{i}.amount"
                self.instalment_minor.append(parse_amount(item.amount, self.currency))
        except MoneyError as error:
            raise ValueError(f"{field}: {error}") from None
        if self.instalments and sum(self.instalment_minor) != self.amount_minor:
            raise ValueError("instalments: instalments must add up to the pledged amount")
        return self


class PledgeCancel(Input):
    #: Why (the donor withdrew, a duplicate, ...): kept on the pledge, never in the audit trail.
    reason: Annotated[str, Field(min_length=3, max_length=500)]


class RecurringAmount(Input):
    """A monthly gift's new amount, in its own currency ("25.00"): charged from the next
    invoice on."""

    amount: Annotated[str, Field(min_length=1, max_length=24)]


class PledgeSchedule(Input):
    """A pledge's whole new schedule: its instalments must add up to the pledged amount."""

    instalments: Annotated[list[InstalmentIn], Field(min_length=1, max_length=360)]


class ReviewCreate(Input):
    outcome: Literal["accept", "reject"]
    #: Internal: the decision history and the audit trail. Never published.
    reason: Annotated[str, Field(min_length=3, max_length=2000)]
    #: What the disclosure may publish if this accepts an exception to a public promise.
    public_note: Annotated[str, Field(min_length=3, max_length=2000)] | None = None


class MergeCreate(Input):
    """Merge another donor record (one person's second record) into this one."""

    duplicate_id: int


class TitleReview(Input):
    """A reviewer's answer to rule possible_senior_decision_maker for one affiliation."""

    #: True: the person is a senior decision-maker (the flag is set); False: the title is
    #: reviewed as not senior and not asked about again while it stays the same.
    senior: bool
    reason: Annotated[str, Field(min_length=3, max_length=2000)]


class UserCreate(Input):
    email: Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    role: Literal[ROLES]  # type: ignore[valid-type]
    password: Annotated[str, Field(min_length=12, max_length=200)]


_KNOWN_PREFIX = re.compile(r"^(amount|estimated_value|fraction|currency|ends_on|purpose|"
                           r"instalments(?:\.\d+\.amount)?|goods_or_services(?:\.value)?|notify_name): ")


def field_errors(error) -> dict[str, list[str]]:
    """A pydantic ValidationError as {"field.path": ["message", ...]}.

    Model-level checks name their field with a "field: " prefix, so every message
    lands on the field a user must correct.
    """
    result: dict[str, list[str]] = {}
    for item in error.errors():
        message = str(item.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        loc = ".".join(str(part) for part in item.get("loc", ()))
        match = _KNOWN_PREFIX.match(message)
        if match:
            loc = ".".join(filter(None, [loc, match.group(1)]))
            message = message[match.end():]
        result.setdefault(loc or "body", []).append(message)
    return result


class InteractionCreate(Input):
    """A call, meeting, e-mail, event, letter or note on a donor's timeline."""

    kind: Literal["call", "meeting", "email", "event", "letter", "note"]
    occurred_on: IsoDate
    summary: Annotated[str, Field(min_length=1, max_length=200)]
    note: Annotated[str, Field(max_length=10_000)] | None = None


class TaskCreate(Input):
    """Something for a staff member to do by a date, usually about a donor."""

    title: Annotated[str, Field(min_length=1, max_length=200)]
    due_on: IsoDate
    #: The staff user to do it; the requester when left out.
    assignee_id: int | None = None
    donor_id: int | None = None
    note: Annotated[str, Field(max_length=10_000)] | None = None


class ContactPreferences(Input):
    """How a donor agreed to be contacted; do_not_contact overrides the rest."""

    do_not_contact: bool
    email_ok: bool = True
    post_ok: bool = True
    phone_ok: bool = True


class ActiveSet(Input):
    """Close (false) or reopen (true) a campaign, appeal or fund."""

    active: bool


# --- donor segments and tags (app.ledger.segments) ----------------------------------------

_TYPED_AMOUNT = re.compile(r"^(\d+|\d{1,3}(,\d{3})+)(\.\d+)?$")
Tag = Annotated[str, Field(pattern=TAG_PATTERN)]
PositiveId = Annotated[int, Field(ge=1, le=2**31 - 1)]


def _typed_amount(value: object) -> object:
    """A giving bound as a person types it ("1,000" or "250.50"): its shape only here; the
    ledger reads it in the reporting currency (its decimal places)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _TYPED_AMOUNT.match(value.strip()):
        raise ValueError("must be an amount such as 1,000 or 250.50")
    return value.strip()


TypedAmount = Annotated[str | None, BeforeValidator(_typed_amount)]


class SegmentCriteria(Input):
    """Which donors a segment holds; every criterion given must hold (AND). Giving counts
    accepted cash gifts net of refunds in the reporting currency; gift dates count accepted
    gifts; campaign and fund: an accepted gift carrying it; organisation: a donor who is, or
    was at any time affiliated with, it; household: in a household (not ended) or not."""

    q: Annotated[str, Field(max_length=200)] | None = None
    type: Literal["person", "organization"] | None = None
    giving_min: TypedAmount = None
    giving_max: TypedAmount = None
    first_gift_from: IsoDate | None = None
    first_gift_to: IsoDate | None = None
    last_gift_from: IsoDate | None = None
    last_gift_to: IsoDate | None = None
    campaign_id: PositiveId | None = None
    fund_id: PositiveId | None = None
    organization_id: PositiveId | None = None
    household: Literal["yes", "no"] | None = None
    tag: Tag | None = None

    @field_validator("q")
    @classmethod
    def _blank_q(cls, value):
        return value or None

    @model_validator(mode="after")
    def _ordered(self):
        for start, end in (("first_gift_from", "first_gift_to"), ("last_gift_from", "last_gift_to")):
            low, high = getattr(self, start), getattr(self, end)
            if low is not None and high is not None and high < low:
                raise ValueError(f"{end} must not be before {start}")
        return self

    def given(self) -> dict:
        """The criteria set, JSON-ready (dates as text): what a segment stores."""
        return self.model_dump(mode="json", exclude_none=True)


class SegmentCreate(Input):
    """A named, saved donor search (POST /segments)."""

    name: Name
    description: Annotated[str, Field(max_length=500)] | None = None
    criteria: SegmentCriteria


class TagSet(Input):
    """PUT /donors/<id>/tags: the donor's tags, all of them (an empty list removes all)."""

    tags: Annotated[list[Tag], Field(max_length=50)]

"""Forms for entering gifts and refunds. They check shape only; the ledger decides.

A valid form becomes a GiftCreate (the same model the JSON API takes) before the
ledger sees it, and every message the model or the ledger gives is put back on the
field the user must correct.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask_wtf import FlaskForm
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlmodel import Session
from wtforms import (
    DateField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from app.ledger import campaigns
from app.ledger.search import donors_matching
from app.web.formtools import AmountField
from models import Donor
from models.money import MoneyError, normalise_currency, parse_amount, parse_rate
from models.schemas import GiftCreate, field_errors

MAX_ID = 2**31 - 1
ATTRIBUTION_ROWS = 3
DONOR_CHOICES_LIMIT = 200

KINDS = (("cash", "Cash (money)"), ("in_kind", "In kind (model access, credits, compute, services)"))
PURPOSES = (
    ("general", "General support"),
    ("restricted", "Restricted"),
    ("evaluation_services", "Payment for evaluation services"),
)
TRIBUTE_KINDS = (("", "Not a tribute gift"), ("honour", "In honour of"),
                 ("memory", "In memory of"))
METHODS = (
    ("check", "Check"), ("wire", "Wire transfer"), ("ach", "ACH"), ("card", "Card"),
    ("paypal", "PayPal"), ("stock", "Stock"), ("daf", "DAF grant"), ("cash", "Cash"),
    ("in_kind", "In kind"), ("other", "Other"),
)


def choices_of(pairs) -> list[SelectChoice]:
    return [SelectChoice(str(value), label) for value, label in pairs]


def optional_int(value: object) -> int | None:
    if value is None or value == "":
        return None
    return int(value)  # a ValueError becomes the field's "could not coerce" message


class AttributionForm(Form):
    """One row of "who the money really comes from". Both cells or neither."""

    donor_id = SelectField("Donor", coerce=optional_int, validate_choice=False,
                           validators=[Optional()])
    fraction = StringField("Fraction", validators=[Optional(), Length(max=10)],
                           description="e.g. 0.5")

    @property
    def empty(self) -> bool:
        return self.donor_id.data is None and not (self.fraction.data or "").strip()


class GiftForm(FlaskForm):
    donor_q = HiddenField()
    donor_id = SelectField("Donor", coerce=optional_int, validate_choice=False,
                           validators=[InputRequired(message="Choose a donor.")])
    amount = AmountField("Amount", validators=[InputRequired(), Length(max=24)],
                         description="In the gift currency, e.g. 1,250.00.")
    currency = StringField("Currency", validators=[InputRequired(), Length(min=3, max=3)],
                           description="ISO 4217 code, e.g. USD, EUR, JPY.")
    received_on = DateField("Received on", validators=[InputRequired()])
    kind = SelectField("Kind", choices=choices_of(KINDS), default="cash")
    purpose = SelectField("Purpose", choices=choices_of(PURPOSES), default="general")
    method = SelectField("Method", choices=choices_of(METHODS), default="other")
    description = TextAreaField("Description", validators=[Optional(), Length(max=1000)])
    fx_rate = StringField("Exchange rate", validators=[Optional(), Length(max=24)])
    fx_source = StringField("Rate source", validators=[Optional(), Length(max=100)],
                            description="Where the rate comes from, e.g. ECB reference rate.")
    attributions = FieldList(FormField(AttributionForm), min_entries=ATTRIBUTION_ROWS,
                             max_entries=ATTRIBUTION_ROWS)
    matching_gift_for = IntegerField("Matching gift for gift #",
                                     validators=[Optional(), NumberRange(min=1, max=MAX_ID)],
                                     description="For an employer matching gift: the employee's gift.")
    pledge_id = IntegerField("Pledge #", validators=[Optional(), NumberRange(min=1, max=MAX_ID)],
                             description="When this gift pays a pledge.")
    campaign_id = SelectField("Campaign", coerce=optional_int, validate_choice=False,
                              validators=[Optional()])
    appeal_id = SelectField("Appeal", coerce=optional_int, validate_choice=False,
                            validators=[Optional()],
                            description="The ask that brought it; it brings its campaign.")
    fund_id = SelectField("Fund", coerce=optional_int, validate_choice=False,
                          validators=[Optional()],
                          description="Where the money goes; a restricted gift goes to a "
                                      "restricted fund.")
    goods_description = StringField(
        "What was given", validators=[Optional(), Length(max=1000)],
        description="e.g. a gala dinner for two.")
    goods_value = AmountField("Its fair-market value", validators=[Optional(), Length(max=24)],
                              description="In the gift currency; 0 if insubstantial.")
    tribute_kind = SelectField("Tribute", choices=choices_of(TRIBUTE_KINDS), default="")
    tribute_name = StringField("Whom it honours or remembers",
                               validators=[Optional(), Length(max=200)])
    notify_name = StringField("Person to notify", validators=[Optional(), Length(max=200)],
                              description="Gets a letter saying who gave, never the amount.")
    notify_address = TextAreaField("Their postal address",
                                   validators=[Optional(), Length(max=500)])
    #: One key per filled-in form: recording it twice finds the first gift instead.
    submission_key = HiddenField(validators=[Length(max=64)])
    #: The outcome the check step showed, to tell the user if recording decided otherwise.
    checked_outcome = HiddenField(validators=[Optional(), Length(max=10)])

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        ok = self._money_shape() and ok
        for row in self.attributions:
            sub = row.form
            has_donor = sub.donor_id.data is not None
            has_fraction = bool((sub.fraction.data or "").strip())
            if has_donor and not has_fraction:
                sub.fraction.errors = [*sub.fraction.errors, "Give this donor's fraction."]
                ok = False
            if has_fraction and not has_donor:
                sub.donor_id.errors = [*sub.donor_id.errors, "Choose the donor for this fraction."]
                ok = False
        return self._goods_and_tribute() and ok

    def _goods_and_tribute(self) -> bool:
        """Both goods facts or neither; a tribute names its kind and person together."""
        ok = True
        described = bool((self.goods_description.data or "").strip())
        valued = bool((self.goods_value.data or "").strip())
        if described and not valued:
            self.goods_value.errors = [*self.goods_value.errors,
                                       "Give its fair-market value (0 if insubstantial)."]
            ok = False
        if valued and not described:
            self.goods_description.errors = [*self.goods_description.errors,
                                             "Say what was given, or leave the value empty."]
            ok = False
        named = bool((self.tribute_name.data or "").strip())
        if self.tribute_kind.data and not named:
            self.tribute_name.errors = [*self.tribute_name.errors,
                                        "Name the person the gift honours or remembers."]
            ok = False
        if named and not self.tribute_kind.data:
            self.tribute_kind.errors = [*self.tribute_kind.errors,
                                        "Choose in honour of, or in memory of."]
            ok = False
        notify = (self.notify_name.data or "").strip() or (self.notify_address.data or "").strip()
        if notify and not self.tribute_kind.data:
            self.tribute_kind.errors = [*self.tribute_kind.errors,
                                        "Only a tribute gift has someone to notify."]
            ok = False
        return ok


    def _money_shape(self) -> bool:
        """The same checks GiftCreate makes, run here too so that every field's message
        shows in one round even when another field is missing."""
        ok = True
        currency = None
        if not self.currency.errors:
            try:
                currency = normalise_currency((self.currency.data or "").strip())
            except MoneyError as error:
                self.currency.errors = [*self.currency.errors, str(error)]
                ok = False
        if currency and not self.amount.errors:
            try:
                parse_amount(self.amount.data, currency)
            except MoneyError as error:
                self.amount.errors = [*self.amount.errors, str(error)]
                ok = False
        if (self.fx_rate.data or "").strip() and not self.fx_rate.errors:
            try:
                parse_rate(self.fx_rate.data)
            except MoneyError as error:
                self.fx_rate.errors = [*self.fx_rate.errors, str(error)]
                ok = False
        return ok


class RefundForm(FlaskForm):
    amount = AmountField("Amount to refund", validators=[InputRequired(), Length(max=24)])
    refunded_on = DateField("Refunded on", validators=[InputRequired()])
    reason = TextAreaField("Reason", validators=[Optional(), Length(max=500)])


class CorrectionForm(FlaskForm):
    """Void a gift recorded in error, or correct it: what is filled in replaces the
    mistaken gift's; nothing filled in voids it."""

    reason = TextAreaField("Why (kept with the correction)",
                           validators=[InputRequired(), Length(min=3, max=2000)])
    amount = AmountField("Right amount", validators=[Optional(), Length(max=24)])
    received_on = DateField("Right date received", validators=[Optional()])
    donor_id = IntegerField("Right donor's number", validators=[Optional(), NumberRange(min=1)])


# --- from form to GiftCreate, and errors back onto the form ------------------------------------

def gift_input(form: GiftForm, external_ref: str | None) -> dict:
    """The form's values in the shape GiftCreate takes (the JSON API's shape)."""
    rows = [row.form for row in form.attributions if not row.form.empty]

    def text(value: str | None) -> str | None:
        value = (value or "").strip()
        return value or None

    return {
        "donor_id": form.donor_id.data,
        "amount": (form.amount.data or "").strip(),
        "currency": (form.currency.data or "").strip(),
        "received_on": form.received_on.data,
        "kind": form.kind.data,
        "purpose": form.purpose.data,
        "method": form.method.data,
        "description": text(form.description.data),
        "fx_rate": text(form.fx_rate.data),
        "fx_source": text(form.fx_source.data),
        "attributions": [{"donor_id": r.donor_id.data, "fraction": r.fraction.data.strip()}
                         for r in rows] or None,
        "matching_gift_for": form.matching_gift_for.data,
        "pledge_id": form.pledge_id.data,
        "external_ref": external_ref,
        "campaign_id": form.campaign_id.data,
        "appeal_id": form.appeal_id.data,
        "fund_id": form.fund_id.data,
        "goods_or_services": {"description": text(form.goods_description.data),
                              "value": text(form.goods_value.data) or ""}
        if text(form.goods_description.data) else None,
        "tribute": {"kind": form.tribute_kind.data, "name": text(form.tribute_name.data),
                    "notify_name": text(form.notify_name.data),
                    "notify_address": text(form.notify_address.data)}
        if form.tribute_kind.data else None,
    }


def to_gift_create(form: GiftForm, external_ref: str | None) -> tuple[GiftCreate | None,
                                                                      dict[str, list[str]]]:
    try:
        return GiftCreate.model_validate(gift_input(form, external_ref)), {}
    except ValidationError as error:
        return None, field_errors(error)


def place_errors(form: GiftForm, errors: dict[str, list[str]], *,
                 only_clean: bool = False) -> dict[str, list[str]]:
    """Put model/ledger messages on their fields. Returns what fits no single field,
    under "attributions" (the rows as a whole) or "form". With only_clean, fields that
    already carry a message keep just that one (the model's would repeat it less clearly)."""
    leftover: dict[str, list[str]] = {}
    plain = {name: getattr(form, name) for name in (
        "donor_id", "amount", "currency", "received_on", "kind", "purpose", "method",
        "description", "fx_rate", "fx_source", "matching_gift_for", "pledge_id",
        "campaign_id", "appeal_id", "fund_id")}
    plain.update({"goods_or_services": form.goods_value,
                  "goods_or_services.description": form.goods_description,
                  "goods_or_services.value": form.goods_value,
                  "tribute": form.tribute_kind, "tribute.kind": form.tribute_kind,
                  "tribute.name": form.tribute_name, "tribute.notify_name": form.notify_name,
                  "tribute.notify_address": form.notify_address})
    for key, messages in errors.items():
        parts = key.split(".")
        field = plain.get(".".join(parts[:2])) or plain.get(parts[0])
        if field is None and parts[0] == "attributions" and len(parts) >= 2 and parts[1].isdigit():
            field = _attribution_field(form, int(parts[1]), parts[2] if len(parts) > 2 else "fraction")
        if field is not None:
            if not (only_clean and field.errors):
                field.errors = [*field.errors, *messages]
        elif parts[0] == "attributions":
            leftover.setdefault("attributions", []).extend(messages)
        else:
            label = "" if parts[0] in ("", "body", "external_ref") else f"{key}: "
            leftover.setdefault("form", []).extend(f"{label}{m}" for m in messages)
    return leftover


def _attribution_field(form: GiftForm, filled_index: int, name: str):
    """Errors count only the filled rows (blank ones are not sent); find the row on screen."""
    filled = [row.form for row in form.attributions if not row.form.empty]
    if filled_index >= len(filled):
        return None
    return getattr(filled[filled_index], name if name in ("donor_id", "fraction") else "fraction")


def carried_fields(form: GiftForm) -> Iterator[tuple[str, str]]:
    """Every value the user entered, as (name, value), for hidden inputs on the check step."""
    for field in form:
        if field.name in ("csrf_token", "checked_outcome"):
            continue
        if isinstance(field, FieldList):
            for row in field:
                for sub in row:
                    yield sub.name, _raw(sub)
        else:
            yield field.name, _raw(field)


def has_errors(form: GiftForm) -> bool:
    for field in form:
        if isinstance(field, FieldList):
            if any(sub.errors for row in field for sub in row):
                return True
        elif field.errors:
            return True
    return False


def _raw(field) -> str:
    if field.raw_data:
        return str(field.raw_data[0])
    return "" if field.data is None else str(field.data)


# --- donor choices -------------------------------------------------------------------------------

def donor_label(donor: Donor) -> str:
    extra = f", {donor.email}" if donor.email else ""
    return f"{donor.name} (#{donor.id}, {donor.type}{extra})"


def donor_search(query, text: str | None):
    """Narrow a donor query by name, email or "#id"."""
    text = (text or "").strip()
    if not text:
        return query
    return query.where(donors_matching(text, by_id=True))


def donor_choices(session: Session, search: str | None,
                  keep: list[int | None]) -> tuple[list[tuple[str, str]], bool]:
    """(choices, truncated): donors matching the search, plus any already chosen."""
    query = donor_search(select(Donor), search).order_by(func.lower(Donor.name), Donor.id)
    donors = list(session.execute(query.limit(DONOR_CHOICES_LIMIT + 1)).scalars())
    truncated = len(donors) > DONOR_CHOICES_LIMIT
    donors = donors[:DONOR_CHOICES_LIMIT]
    present = {d.id for d in donors}
    extra_ids = {i for i in keep if i is not None and i not in present and 0 < i <= MAX_ID}
    if extra_ids:
        donors = list(session.execute(select(Donor).where(Donor.id.in_(extra_ids))).scalars()) + donors
    return [(str(d.id), donor_label(d)) for d in donors], truncated


def set_donor_choices(session: Session, form: GiftForm) -> bool:
    keep = [form.donor_id.data] + [row.form.donor_id.data for row in form.attributions]
    found, truncated = donor_choices(session, form.donor_q.data, keep)
    form.donor_id.choices = [SelectChoice("", "— choose a donor —"), *choices_of(found)]
    for row in form.attributions:
        row.form.donor_id.choices = [SelectChoice("", "—"), *choices_of(found)]
    for kind in campaigns.MODELS:
        getattr(form, f"{kind}_id").choices = [SelectChoice("", "— none —"),
                                               *choices_of(campaigns.choices(session, kind))]
    return truncated

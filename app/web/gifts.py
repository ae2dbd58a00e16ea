"""Gift pages: the list, one gift with its full decision history, entry and refunds.

Entry is two steps. "Check" asks the ledger for the decision without writing
anything (record_gift with dry_run); "Record gift" sends the same values again
and the ledger decides afresh, since other gifts may have arrived in between.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import DataError

from app.auth.roles import READ
from app.db import get_session
from app.errors import Duplicate, LedgerBusy, NotAllowed, NotFound, ValidationFailed
from app.extensions import state
from app.http_errors import answer_for
from app.ledger import campaigns, corrections
from app.ledger.csv_export import GiftFilters
from app.ledger.gifts import record_gift, refund_gift
from app.ledger.tributes import KIND_WORDS, tribute_of
from app.web.access import get_or_404, role_required
from app.web.decisions import OUTCOME_WORDS, decision_views, user_emails
from app.web.formtools import AmountRange, amount_range_arg, ordered, sort_from_args
from app.web.formtools import place_errors as form_errors
from app.web.gift_forms import (
    KINDS,
    PURPOSES,
    CorrectionForm,
    GiftForm,
    RefundForm,
    carried_fields,
    has_errors,
    place_errors,
    set_donor_choices,
    to_gift_create,
)
from app.web.review_forms import OverrideRequestForm
from models import (
    Attribution,
    Decision,
    Donor,
    Gift,
    GiftCorrection,
    OverrideRequest,
    Pledge,
    Refund,
)
from models.gifts import GIFT_STATUSES
from models.money import MoneyError, format_amount, parse_amount
from models.schemas import PPM, GiftCorrectionCreate, RefundCreate, field_errors
from policies import percent_text

bp = Blueprint("gifts", __name__, url_prefix="/staff/gifts")

PER_PAGE = 25
#: Key prefix for the form's idempotency key, stored as the gift's external_ref.
FORM_REF_PREFIX = "staff-form:"
FLASH_CATEGORY = {"accept": "success", "hold": "warning", "reject": "error"}


def endpoint_url(endpoint: str, **values) -> str | None:
    """A link to another area's page, or None while that page does not exist."""
    from flask import current_app

    if endpoint not in current_app.view_functions:
        return None
    return url_for(endpoint, **values)


# --- list ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    status: str | None
    kind: str | None
    q: str
    date_from: date | None
    date_to: date | None
    errors: tuple[str, ...]
    campaign_id: int | None = None
    fund_id: int | None = None
    #: In the reporting currency (the list compares gifts in different currencies there).
    amounts: AmountRange = AmountRange()

    def args(self) -> dict:
        values = {"status": self.status, "kind": self.kind, "q": self.q or None,
                  "from": self.date_from.isoformat() if self.date_from else None,
                  "to": self.date_to.isoformat() if self.date_to else None,
                  "campaign": self.campaign_id, "fund": self.fund_id, **self.amounts.args()}
        return {k: v for k, v in values.items() if v}

    def export(self, reporting_currency: str) -> GiftFilters:
        """The same filter as the ledger's (the CSV export uses it too)."""
        return GiftFilters(reporting_currency=reporting_currency,
                           received_from=self.date_from, received_to=self.date_to,
                           status=self.status, kind=self.kind, q=self.q or None,
                           campaign_id=self.campaign_id, fund_id=self.fund_id,
                           amount_min=self.amounts.low, amount_max=self.amounts.high)


def _date_arg(name: str, label: str, errors: list[str]) -> date | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(f"{label}: {text!r} is not a date (YYYY-MM-DD); ignored.")
        return None


def filters_from_args(reporting_currency: str) -> Filters:
    errors: list[str] = []
    status = request.args.get("status") or None
    if status is not None and status not in GIFT_STATUSES:
        errors.append(f"Unknown status {status!r}; ignored.")
        status = None
    kind = request.args.get("kind") or None
    if kind is not None and kind not in dict(KINDS):
        errors.append(f"Unknown kind {kind!r}; ignored.")
        kind = None
    designated = {}
    for name in ("campaign", "fund"):
        value = request.args.get(name, type=int)
        designated[name] = value if value is not None and 0 < value < 2**31 else None
    date_from, date_to = _date_arg("from", "From", errors), _date_arg("to", "To", errors)
    amounts = amount_range_arg([reporting_currency], errors)
    return Filters(status, kind, request.args.get("q", "").strip()[:200],
                   date_from, date_to, tuple(errors),
                   designated["campaign"], designated["fund"], amounts)


#: The gift list's sortable columns (?sort=KEY&dir=asc|desc). Amounts sort by their value in
#: the reporting currency: gifts in different currencies compare only there.
SORT_COLUMNS = {"id": Gift.id, "received": Gift.received_on, "donor": func.lower(Donor.name),
                "reporting": Gift.reporting_amount_minor, "status": Gift.status}


@bp.get("/")
@role_required(READ)
def index():
    session = get_session()
    filters = filters_from_args(state().reporting_currency)
    query = (select(Gift, Donor).join(Donor, Donor.id == Gift.donor_id)
             .where(*filters.export(state().reporting_currency).conditions()))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
    sort = sort_from_args(SORT_COLUMNS, "received", descending=True,
                          desc_first=("received", "reporting", "id"))
    rows = session.execute(
        query.order_by(*ordered(sort, SORT_COLUMNS, Gift.id))
        .offset((page - 1) * PER_PAGE).limit(PER_PAGE)
    ).all()
    latest = _latest_decision_kinds(session, [gift.id for gift, _ in rows])
    return render_template(
        "gifts/index.html", rows=rows, latest=latest, filters=filters, total=total, page=page,
        pages=pages, statuses=GIFT_STATUSES, kinds=KINDS, sort=sort,
        campaign_choices=campaigns.choices(session, "campaign"),
        fund_choices=campaigns.choices(session, "fund"), reporting_currency=state().reporting_currency,
    )


def _latest_decision_kinds(session, gift_ids: list[int]) -> dict[int, str]:
    if not gift_ids:
        return {}
    newest = (select(func.max(Decision.id)).where(Decision.gift_id.in_(gift_ids))
              .group_by(Decision.gift_id))
    rows = session.execute(select(Decision.gift_id, Decision.kind).where(Decision.id.in_(newest)))
    return {row.gift_id: row.kind for row in rows}


# --- detail --------------------------------------------------------------------------------------

@bp.get("/<int:gift_id>")
@role_required(READ)
def detail(gift_id: int):
    gift = get_or_404(Gift, gift_id)
    return _render_detail(gift)


def _render_detail(gift: Gift, *, refund_form: RefundForm | None = None,
                   override_form: OverrideRequestForm | None = None,
                   correction_form: CorrectionForm | None = None, status: int = 200):
    session = get_session()
    donor = session.get(Donor, gift.donor_id)
    attributions = [
        (a, d, percent_text(Fraction(a.fraction_ppm, PPM), 4)) for a, d in session.execute(
            select(Attribution, Donor).join(Donor, Donor.id == Attribution.donor_id)
            .where(Attribution.gift_id == gift.id).order_by(Attribution.id)
        ).all()
    ]
    refunds = list(session.execute(
        select(Refund).where(Refund.gift_id == gift.id).order_by(Refund.refunded_on, Refund.id)
    ).scalars())
    decisions = list(session.execute(
        select(Decision).where(Decision.gift_id == gift.id).order_by(Decision.id)
    ).scalars())
    overrides = list(session.execute(
        select(OverrideRequest).where(OverrideRequest.gift_id == gift.id).order_by(OverrideRequest.id)
    ).scalars())
    pledge = session.get(Pledge, gift.pledge_id) if gift.pledge_id else None
    designated = campaigns.designation_of(session, [gift.id]).get(gift.id)
    designation = [] if designated is None else [
        (kind, campaigns.by_id(session, kind, getattr(designated, f"{kind}_id")))
        for kind in campaigns.MODELS if getattr(designated, f"{kind}_id") is not None]
    emails = user_emails(session, [gift.created_by_id] + [r.created_by_id for r in refunds]
                         + [o.requested_by_id for o in overrides]
                         + [o.decided_by_id for o in overrides])
    # Refund id -> the date its reversal counts from (a refund that failed later).
    reversed_on = {r.reverses_refund_id: r.refunded_on for r in refunds if r.is_reversal}
    remaining = gift.amount_minor - gift.refunded_minor
    can_refund = (current_user.can("refunds") and remaining > 0
                  and gift.status not in ("pending", "failed"))
    if can_refund and refund_form is None:
        refund_form = RefundForm(formdata=None, amount=format_amount(remaining, gift.currency),
                                 refunded_on=state().today())
    pending = next((o for o in overrides if o.state == "pending"), None)
    can_request_override = (current_user.can("review") and gift.status == "rejected"
                            and pending is None)
    if can_request_override and override_form is None:
        override_form = OverrideRequestForm(formdata=None)
    correction = corrections.correction_of(session, gift.id)
    fixes = session.execute(select(GiftCorrection).where(
        GiftCorrection.replacement_gift_id == gift.id)).scalar_one_or_none()
    can_correct = (current_user.can("gifts.correct") and correction is None
                   and gift.status in corrections.VOIDABLE and not refunds)
    return render_template(
        "gifts/detail.html", gift=gift, donor=donor, attributions=attributions, refunds=refunds,
        reversed=reversed_on, designation=designation, tribute=tribute_of(session, gift.id),
        tribute_words=KIND_WORDS,
        decisions=decision_views(session, decisions, gift.kind), overrides=overrides,
        pending=pending, pledge=pledge, emails=emails, remaining=remaining,
        refund_form=refund_form if can_refund else None,
        override_form=override_form if can_request_override else None,
        donor_url=endpoint_url("donors.detail", donor_id=gift.donor_id),
        pledge_url=endpoint_url("pledges.detail", pledge_id=gift.pledge_id) if gift.pledge_id else None,
        form_ref=(gift.external_ref or "").startswith(FORM_REF_PREFIX),
        correction=correction, fixes=fixes,
        correction_form=(correction_form or CorrectionForm(formdata=None, prefix="correct"))
        if can_correct else None,
    ), status


# --- entry ---------------------------------------------------------------------------------------

@bp.route("/new", methods=["GET", "POST"])
@role_required("gifts.write")
def new():
    session = get_session()
    st = state()
    if request.method == "GET":
        form = _blank_form(session, st)
        return _render_entry(form)
    form = GiftForm()
    action = request.form.get("action", "check")
    if action == "edit":
        return _render_entry(form)
    if not form.submission_key.data:
        form.submission_key.data = secrets.token_urlsafe(16)
    if not form.validate():
        # Also show what the model would say about the other fields, so one round of
        # corrections is enough.
        _, errors = to_gift_create(form, None)
        return _render_entry(form, place_errors(form, errors, only_clean=True), status=422)
    data, errors = to_gift_create(form, FORM_REF_PREFIX + form.submission_key.data)
    if data is None:
        return _render_entry(form, place_errors(form, errors), status=422)
    dry_run = action != "record"
    try:
        recorded = record_gift(session, data, g.actor, st.policy_for(session),
                               st.reporting_currency, dry_run=dry_run,
                               max_gift_minor=st.max_gift_minor, open_only=True)
    except ValidationFailed as error:
        return _render_entry(form, place_errors(form, error.errors), status=422)
    except Duplicate as error:
        if error.field == "external_ref":
            flash(f"This form was already recorded as gift #{error.existing_id}; "
                  "it was not recorded again.", "warning")
            return redirect(url_for("gifts.detail", gift_id=error.existing_id))
        return _answer_on_form(form, error)
    except (LedgerBusy, DataError, OverflowError) as error:
        return _answer_on_form(form, error)
    if dry_run:
        return _render_check(form, recorded)
    gift, decision = recorded.gift, recorded.decision
    flash(f"Gift #{gift.id} recorded: {OUTCOME_WORDS[decision.outcome]}.",
          FLASH_CATEGORY[decision.outcome])
    checked = form.checked_outcome.data
    if checked in OUTCOME_WORDS and checked != decision.outcome:
        flash(f"The ledger changed after the check: the policy's decision is now "
              f"\u201c{OUTCOME_WORDS[decision.outcome]}\u201d, not "
              f"\u201c{OUTCOME_WORDS[checked]}\u201d as the check said. See the decision below.",
              "warning")
    return redirect(url_for("gifts.detail", gift_id=gift.id))


def _answer_on_form(form: GiftForm, error: Exception):
    """The entry form again, with the refusal's message (app.http_errors) above it."""
    answer = answer_for(error)
    if answer.rollback:
        get_session().rollback()
    return _render_entry(form, {"form": [answer.message]}, status=answer.status)


def _blank_form(session, st) -> GiftForm:
    donor_id = request.args.get("donor_id", type=int)
    pledge_id = request.args.get("pledge_id", type=int)
    currency = st.reporting_currency
    pledge = session.get(Pledge, pledge_id) if pledge_id and 0 < pledge_id < 2**31 else None
    if pledge is not None:
        donor_id, currency = pledge.donor_id, pledge.currency
    form = GiftForm(
        formdata=None,
        donor_q=request.args.get("donor_q", "").strip()[:200],
        donor_id=donor_id,
        pledge_id=pledge.id if pledge else None,
        matching_gift_for=request.args.get("matching_gift_for", type=int),
        currency=currency,
        received_on=st.today(),
        submission_key=secrets.token_urlsafe(16),
    )
    set_donor_choices(session, form)
    return form


def _render_entry(form: GiftForm, extra: dict[str, list[str]] | None = None, status: int = 200):
    session = get_session()
    truncated = set_donor_choices(session, form)
    return render_template(
        "gifts/new.html", form=form, step="enter", extra=extra or {}, has_errors=has_errors(form),
        donors_truncated=truncated, reporting_currency=state().reporting_currency,
    ), status


def _render_check(form: GiftForm, recorded):
    session = get_session()
    decision = recorded.decision
    form.checked_outcome.data = decision.outcome
    gift = recorded.gift
    donor = session.get(Donor, gift.donor_id)
    named = {d.id: d for d in session.execute(select(Donor).where(Donor.id.in_(
        [row.form.donor_id.data for row in form.attributions if row.form.donor_id.data]
    ))).scalars()}
    attributions = [(named.get(row.form.donor_id.data), row.form.fraction.data.strip())
                    for row in form.attributions if not row.form.empty]
    view = decision_views(session, [decision], gift.kind, prospective=True)[0]
    return render_template(
        "gifts/new.html", form=form, step="check", gift=gift, donor=donor,
        attributions=attributions, decision=view,
        carried=list(carried_fields(form)), purposes=dict(PURPOSES), kinds=dict(KINDS),
    )


# --- corrections ---------------------------------------------------------------------------------

@bp.post("/<int:gift_id>/correct")
@role_required("gifts.correct")
def correct(gift_id: int):
    """Void a gift recorded in error or, with a right amount, date or donor, correct it
    (app.ledger.corrections): the mistaken gift stays in history, reversed."""
    session = get_session()
    gift = get_or_404(Gift, gift_id)
    form = CorrectionForm(prefix="correct")
    if not form.validate_on_submit():
        return _render_detail(gift, correction_form=form, status=422)
    policy = state().policy_for(session)
    wanted = {"reason": form.reason.data.strip(),
              "amount": (form.amount.data or "").strip() or None,
              "received_on": form.received_on.data, "donor_id": form.donor_id.data}
    try:
        data = GiftCorrectionCreate.model_validate(wanted)
        if data.changes_anything():
            done = corrections.correct_gift(session, gift_id, data, g.actor, policy,
                                            state().reporting_currency)
        else:
            done = corrections.void_gift(session, gift_id, data.reason, g.actor, policy)
    except ValidationError as error:
        form_errors(form, field_errors(error))
        return _render_detail(session.get(Gift, gift_id), correction_form=form, status=422)
    except (ValidationFailed, NotAllowed) as error:
        messages = error.errors if isinstance(error, ValidationFailed) else {
            "form": [str(error)]}
        form_errors(form, messages)
        return _render_detail(session.get(Gift, gift_id), correction_form=form, status=422)
    held = len(done.rescreened)
    later = (f" {held} later gift{'s were' if held != 1 else ' was'} re-screened and held "
             "for a reviewer." if held else "")
    if done.replacement is not None:
        flash(f"Gift {gift_id} voided and corrected: gift {done.replacement.gift.id} recorded "
              f"in its place ({done.replacement.gift.status}).{later}", "success")
        return redirect(url_for("gifts.detail", gift_id=done.replacement.gift.id), 303)
    flash(f"Gift {gift_id} voided.{later}", "success")
    return redirect(url_for("gifts.detail", gift_id=gift_id), 303)


# --- refunds -------------------------------------------------------------------------------------

@bp.post("/<int:gift_id>/refund")
@role_required("refunds")
def refund(gift_id: int):
    session = get_session()
    gift = get_or_404(Gift, gift_id)
    form = RefundForm()
    if not form.validate():
        return _render_detail(gift, refund_form=form, status=422)
    try:
        data = RefundCreate.model_validate({
            "amount": form.amount.data.strip(), "refunded_on": form.refunded_on.data,
            "reason": (form.reason.data or "").strip() or None,
        })
    except ValidationError as error:
        _put_refund_errors(form, field_errors(error))
        return _render_detail(gift, refund_form=form, status=422)
    try:
        amount_minor = parse_amount(data.amount, gift.currency)
    except MoneyError as error:
        form.amount.errors = [*form.amount.errors, str(error)]
        return _render_detail(gift, refund_form=form, status=422)
    try:
        refund_gift(session, gift.id, g.actor, amount_minor=amount_minor,
                    refunded_on=data.refunded_on or state().today(), reason=data.reason)
    except ValidationFailed as error:
        _put_refund_errors(form, error.errors)
        return _render_detail(session.get(Gift, gift_id), refund_form=form, status=422)
    except (NotAllowed, NotFound, LedgerBusy) as error:
        answer = answer_for(error)
        flash(answer.message, "error")
        return _render_detail(session.get(Gift, gift_id), refund_form=form, status=answer.status)
    gift = session.get(Gift, gift_id)
    flash(f"Refund of {format_amount(amount_minor, gift.currency)} {gift.currency} recorded "
          f"for gift #{gift.id}.", "success")
    return redirect(url_for("gifts.detail", gift_id=gift.id))


def _put_refund_errors(form: RefundForm, errors: dict[str, list[str]]) -> None:
    fields = {"amount": form.amount, "refunded_on": form.refunded_on, "reason": form.reason}
    for key, messages in errors.items():
        field = fields.get(key.split(".")[0], form.amount)
        field.errors = [*field.errors, *messages]

"""Staff pages for recurring gifts: the list of monthly donors (status, next charge, failed
payments, lifetime value), one donation's page, and pausing, resuming, changing the amount
of and cancelling it through Stripe (app.payments.recurring).

Everyone who reads may see them; changing one is "recurring.manage" (finance and admin,
app.auth.roles: it changes what a donor is charged, which finance answers for, as refunds).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField
from wtforms.validators import DataRequired, Length

from app.auth.roles import READ
from app.db import get_session
from app.errors import LedgerError
from app.extensions import state
from app.http_errors import answer_for
from app.payments import recurring
from app.payments.gateway import gateway
from app.web.access import role_required
from app.web.formtools import INVALID, AmountField, ButtonForm, page_of
from models import AuditEntry, DonationGift, Gift, OnlineDonation
from models.money import MoneyError, format_amount, parse_amount

bp = Blueprint("recurring", __name__, url_prefix="/staff/recurring")

MANAGE = "recurring.manage"
STATUS_LABELS = {"active": "Active", "paused": "Paused", "past_due": "Past due",
                 "cancelled": "Cancelled"}
DONE = {"pause": "paused", "resume": "resumed", "change_amount": "changed",
        "cancel": "cancelled"}


class CancelForm(FlaskForm):
    confirm = BooleanField("Yes, cancel it", validators=[DataRequired(
        "Tick the box to confirm: a cancelled monthly gift cannot be restarted here.")])


class AmountForm(FlaskForm):
    amount = AmountField("New monthly amount", validators=[DataRequired(), Length(max=24)],
                         description="Charged from the next invoice on; the month already "
                                     "paid is not changed.")


def _donation(donation_id: int) -> OnlineDonation:
    donation = get_session().get(OnlineDonation, donation_id)
    if donation is None or donation.frequency != "monthly" or donation.subscription_id is None:
        abort(404)
    return donation


@bp.get("/")
@role_required(READ)
def index():
    session = get_session()
    status = request.args.get("status") or None
    status = status if status in recurring.STATUSES else None
    page, donations = page_of(session, recurring.recurring_query(status), per_page=50)
    return render_template(
        "recurring/index.html", rows=recurring.rows_for(session, donations,
                                                        state().reporting_currency),
        page=page, status=status, counts=recurring.counts(session), labels=STATUS_LABELS,
        currency=state().reporting_currency, configured=gateway() is not None,
        action_form=ButtonForm(), cancel_form=CancelForm())


@bp.get("/<int:donation_id>")
@role_required(READ)
def detail(donation_id: int):
    return _detail(_donation(donation_id))


def _detail(donation: OnlineDonation, amount_form: AmountForm | None = None,
            cancel_form: CancelForm | None = None, status: int = 200):
    session = get_session()
    [row] = recurring.rows_for(session, [donation], state().reporting_currency)
    gifts = session.execute(
        select(Gift).join(DonationGift, DonationGift.gift_id == Gift.id)
        .where(DonationGift.donation_id == donation.id)
        .order_by(Gift.received_on.desc(), Gift.id.desc()).limit(100)).scalars().all()
    history = session.execute(
        select(AuditEntry).where(AuditEntry.entity_type == "online_donation",
                                 AuditEntry.entity_id == donation.id)
        .order_by(AuditEntry.id.desc()).limit(50)).scalars().all()
    return render_template(
        "recurring/detail.html", row=row, gifts=gifts, history=history, labels=STATUS_LABELS,
        currency=state().reporting_currency, configured=gateway() is not None,
        action_form=ButtonForm(), cancel_form=cancel_form or CancelForm(),
        amount_form=amount_form or AmountForm(
            amount=format_amount(donation.monthly_amount_minor, donation.currency))), status


def _back(donation_id: int):
    """Where the form came from: the list (keeping its filter) or the donation's page."""
    target = request.form.get("back")
    if target == "list":
        return redirect(url_for("recurring.index", status=request.form.get("status") or None))
    return redirect(url_for("recurring.detail", donation_id=donation_id))


def _change(donation_id: int, action: str, amount_minor: int | None = None):
    st = state()
    try:
        done = recurring.change(get_session(), gateway(), donation_id, action, g.actor,
                                st.timezone, amount_minor,
                                max_amount_minor=st.max_gift_minor)
    except LedgerError as error:
        get_session().rollback()
        flash(answer_for(error).message, "error")
        return None
    return done


@bp.post("/<int:donation_id>/pause")
@role_required(MANAGE)
def pause(donation_id: int):
    _donation(donation_id)
    if ButtonForm().validate_on_submit() and _change(donation_id, "pause"):
        flash(f"Monthly gift {donation_id} paused: Stripe will not charge it until it is "
              "resumed.", "success")
    return _back(donation_id)


@bp.post("/<int:donation_id>/resume")
@role_required(MANAGE)
def resume(donation_id: int):
    _donation(donation_id)
    if ButtonForm().validate_on_submit() and _change(donation_id, "resume"):
        flash(f"Monthly gift {donation_id} resumed.", "success")
    return _back(donation_id)


@bp.post("/<int:donation_id>/cancel")
@role_required(MANAGE)
def cancel(donation_id: int):
    donation = _donation(donation_id)
    form = CancelForm()
    if not form.validate_on_submit():
        if request.form.get("back") == "list":
            flash("Not cancelled: " + "; ".join(form.confirm.errors or ["the form expired"]),
                  "error")
            return _back(donation_id)
        return _detail(donation, cancel_form=form, status=INVALID)
    if _change(donation_id, "cancel"):
        flash(f"Monthly gift {donation_id} cancelled: Stripe will not charge it again.",
              "success")
    return _back(donation_id)


@bp.post("/<int:donation_id>/amount")
@role_required(MANAGE)
def change_amount(donation_id: int):
    donation = _donation(donation_id)
    form = AmountForm()
    if form.validate_on_submit():
        try:
            minor = parse_amount(form.amount.data, donation.currency)
        except MoneyError as error:
            form.amount.errors = [*form.amount.errors, str(error)]
        else:
            if minor <= 0:
                form.amount.errors = [*form.amount.errors, "must be more than zero"]
            elif _change(donation_id, "change_amount", minor):
                flash(f"Monthly gift {donation_id}: {format_amount(minor, donation.currency)} "
                      f"{donation.currency} from the next invoice on.", "success")
                return _back(donation_id)
            else:
                return _back(donation_id)
    return _detail(donation, amount_form=form, status=INVALID)

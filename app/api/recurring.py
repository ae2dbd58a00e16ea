"""JSON API for recurring gifts (docs/api.md, "Recurring gifts"): the monthly donations with
their status, next charge, failed payments and lifetime value; pause, resume, a new amount
and cancel, asked of Stripe (app.payments.recurring).

The changes take no Idempotency-Key: they call Stripe, which must never happen inside the
request's ledger batch (app.api.idempotency), and each is safe to repeat in its effect (a
second pause of a paused gift is a 409, a second cancel of a cancelled one too).
"""

from __future__ import annotations

from flask import g, jsonify
from sqlalchemy import or_, select

from app.api.access import MAX_ID, parse_body, query_choice, query_int, require
from app.api.routes import bp
from app.auth.roles import READ
from app.db import get_session
from app.errors import NotFound, ValidationFailed
from app.extensions import state
from app.payments import recurring
from app.payments.gateway import gateway
from models import OnlineDonation
from models.money import MoneyError, format_amount, parse_amount
from models.schemas import RecurringAmount

MANAGE = "recurring.manage"


def recurring_public(row: recurring.RecurringRow, currency: str) -> dict:
    d = row.donation
    return {
        "id": d.id,
        "donor_id": d.donor_id,
        "payer_donor_id": d.payer_donor_id,
        "status": row.status,
        "amount": format_amount(d.monthly_amount_minor, d.currency),
        "amount_minor": d.monthly_amount_minor,
        "currency": d.currency,
        "first_amount": format_amount(d.amount_minor, d.currency),
        "next_charge_on": d.next_charge_on.isoformat() if d.next_charge_on else None,
        "failed_payments": d.failed_payments,
        "lifetime_value": format_amount(row.lifetime_minor, currency),
        "lifetime_value_minor": row.lifetime_minor,
        "lifetime_currency": currency,
        "gifts": row.gifts,
        "campaign_id": d.campaign_id,
        "stripe_subscription_id": d.subscription_id,
        "stripe_status": d.subscription_status,
        "started_at": d.created_at.isoformat(),
        "attention": d.attention,
    }


def _one(donation_id: int) -> dict:
    session = get_session()
    donation = session.get(OnlineDonation, donation_id)
    if donation is None or donation.frequency != "monthly" or donation.subscription_id is None:
        raise NotFound("monthly gift", donation_id)
    currency = state().reporting_currency
    [row] = recurring.rows_for(session, [donation], currency)
    return recurring_public(row, currency)


@bp.get("/recurring")
@require(READ)
def list_recurring():
    session = get_session()
    limit = query_int("limit", 50, 1, 500)
    after = query_int("after_id", 0, 0, MAX_ID)
    query = select(OnlineDonation).where(recurring.RECURRING, OnlineDonation.id > after)
    status = query_choice("status", recurring.STATUSES)
    if status:
        query = query.where(recurring.STATUS == status)
    donor_id = query_int("donor_id", None, 0, MAX_ID)
    if donor_id is not None:
        query = query.where(or_(OnlineDonation.donor_id == donor_id,
                                OnlineDonation.payer_donor_id == donor_id))
    donations = session.execute(query.order_by(OnlineDonation.id).limit(limit)).scalars().all()
    currency = state().reporting_currency
    return jsonify({
        "items": [recurring_public(row, currency)
                  for row in recurring.rows_for(session, list(donations), currency)],
        "next_after_id": donations[-1].id if len(donations) == limit else None,
    })


@bp.get("/recurring/<int:donation_id>")
@require(READ)
def get_recurring(donation_id: int):
    return jsonify(_one(donation_id))


def _change(donation_id: int, action: str, amount_minor: int | None = None):
    _one(donation_id)  # 404 before anything is asked of Stripe
    done = recurring.change(get_session(), gateway(), donation_id, action, g.actor,
                            state().timezone, amount_minor,
                            max_amount_minor=state().max_gift_minor)
    return jsonify({**_one(donation_id), "stripe": done.stripe.as_dict()})


@bp.post("/recurring/<int:donation_id>/pause")
@require(MANAGE)
def pause_recurring(donation_id: int):
    return _change(donation_id, "pause")


@bp.post("/recurring/<int:donation_id>/resume")
@require(MANAGE)
def resume_recurring(donation_id: int):
    return _change(donation_id, "resume")


@bp.post("/recurring/<int:donation_id>/cancel")
@require(MANAGE)
def cancel_recurring(donation_id: int):
    return _change(donation_id, "cancel")


@bp.post("/recurring/<int:donation_id>/amount")
@require(MANAGE)
def change_recurring_amount(donation_id: int):
    data = parse_body(RecurringAmount)
    donation = get_session().get(OnlineDonation, donation_id)
    if donation is None:
        raise NotFound("monthly gift", donation_id)
    try:
        minor = parse_amount(data.amount, donation.currency)
    except MoneyError as error:
        raise ValidationFailed({"amount": [str(error)]}) from None
    if minor <= 0:
        raise ValidationFailed({"amount": ["must be more than zero"]})
    return _change(donation_id, "change_amount", minor)


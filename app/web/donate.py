"""The public donate page: screen first, then send the donor to Stripe Checkout.

GET/POST /donate, GET /donate/thanks, GET /donate/cancelled. Works without JavaScript:
the currency links reload the page with that currency's preset amounts.
"""

from __future__ import annotations

import stripe
from flask import Blueprint, current_app, redirect, render_template, request, url_for
from sqlalchemy import select

from app.db import get_session
from app.extensions import state
from app.ledger.campaigns import active_campaign
from app.payments.currencies import offered, preview_rates
from app.payments.gateway import gateway
from app.payments.matching import donation_metadata, ensure_install_id
from app.payments.recording import move
from app.payments.screening import Declaration, covered_labs, screen_donation
from app.web.access import public
from app.web.donate_forms import DonateForm
from app.web.ratelimit import RateLimiter, parse_limit
from models import OnlineDonation

bp = Blueprint("donate", __name__, url_prefix="/donate")


def _limiter() -> RateLimiter:
    limiter = current_app.extensions.get("armslength.donate_limiter")
    if limiter is None:
        limiter = RateLimiter(*parse_limit(current_app.config["DONATE_RATE_LIMIT"]))
        current_app.extensions["armslength.donate_limiter"] = limiter
    return limiter


def _return_url(setting: str, endpoint: str) -> str:
    return current_app.config.get(setting) or url_for(endpoint, _external=True)


def checkout_params(donation: OnlineDonation, email: str, install: str) -> dict:
    """The Checkout Session for a screened donation: amounts in minor units; this
    installation's id and the donation's reference in the metadata of the session and of
    what it creates (payment intent or subscription), checked on every event."""
    org = current_app.config["ORG_NAME"]
    metadata = donation_metadata(donation, install)
    success = _return_url("DONATION_SUCCESS_URL", "donate.thanks")
    success += ("&" if "?" in success else "?") + "session_id={CHECKOUT_SESSION_ID}"
    price_data: dict = {
        "currency": donation.currency.lower(),
        "unit_amount": donation.amount_minor,
        "product_data": {"name": f"Donation to {org}" if donation.frequency == "once"
                         else f"Monthly donation to {org}"},
    }
    params: dict = {
        "line_items": [{"price_data": price_data, "quantity": 1}],
        "customer_email": email,
        "client_reference_id": donation.reference,
        "success_url": success,
        "cancel_url": _return_url("DONATION_CANCEL_URL", "donate.cancelled"),
        "metadata": metadata,
    }
    if donation.frequency == "monthly":
        price_data["recurring"] = {"interval": "month"}
        params["mode"] = "subscription"
        params["subscription_data"] = {"metadata": metadata}
    else:
        params["mode"] = "payment"
        params["submit_type"] = "donate"
        params["payment_intent_data"] = {"metadata": metadata}
    return params


def _render(form, status: int = 200, **extra):
    currencies = list(form.currencies.values())
    return render_template("donate/form.html", configured=True, form=form,
                           currencies=currencies, shown=form.shown, **extra), status


def _campaign(session):
    """The campaign the link names (?campaign=code), if it is open today. The link is a
    claim anyone can type: an unknown, closed or finished code is ignored (the gift then
    names no campaign), never an error and never echoed."""
    return active_campaign(session, request.args.get("campaign", ""), state().today())


@bp.route("", methods=["GET", "POST"])
@public
def donate():
    config = current_app.config
    st = state()
    currencies = offered(config, st.reporting_currency)
    gw = gateway()
    if gw is None or not currencies:
        return render_template("donate/form.html", configured=False)
    session = get_session()
    wanted = request.args.get("currency", "").upper()
    by_code = {c.code: c for c in currencies}
    shown = by_code.get(wanted) or by_code.get(st.reporting_currency) or currencies[0]
    form = DonateForm()
    form.setup(currencies, covered_labs(session), shown)
    campaign = _campaign(session)
    if request.method != "POST":
        return _render(form, campaign=campaign)
    if not _limiter().allow(request.remote_addr or "unknown"):
        return _render(form, 429, campaign=campaign,
                       problem="Too many attempts from your connection. Please wait a minute "
                               "and try again.")
    if not form.validate_on_submit():
        return _render(form, 400, campaign=campaign)

    decl = Declaration(
        name=form.name.data.strip(), email=form.email.data.strip(),
        amount_minor=form.amount_minor, currency=form.currency.data,
        frequency=form.frequency.data, employer=(form.employer.data or "").strip() or None,
        lab_id=int(form.lab.data) if form.lab.data else None, senior=bool(form.senior.data),
        via_daf=bool(form.daf.data), daf_sponsor=(form.daf_sponsor.data or "").strip() or None,
        daf_advisor=(form.daf_advisor.data or "").strip() or None,
        anonymous=bool(form.anonymous.data),
        campaign_id=campaign.id if campaign is not None else None,
    )
    policy = st.policy_for(session)
    screening = screen_donation(
        session, decl, policy, st.reporting_currency, st.today(),
        preview_rates(config, st.reporting_currency).get(decl.currency),
    )
    if screening.donation is None:
        return render_template("donate/declined.html", reasons=screening.reasons)

    donation = screening.donation
    install = ensure_install_id(session)
    try:
        # Keyed by the random reference, not the form number: form numbers repeat across
        # installations sharing the Stripe account and after a restore, and Stripe would
        # answer a repeated key with the other donation's session.
        checkout = gw.create_checkout_session(checkout_params(donation, decl.email, install),
                                              idempotency_key=f"donation-{donation.reference}-checkout")
    except stripe.StripeError:
        current_app.logger.exception("creating the Checkout Session of donation %s failed",
                                     donation.id)
        move(donation, "error")
        session.commit()
        return _render(form, 502, campaign=campaign,
                       problem="We could not reach our payment processor. No money was "
                               "taken; please try again in a few minutes.")
    donation.checkout_session_id = checkout.id
    move(donation, "open")  # unless a fast webhook already moved it on
    session.commit()
    return redirect(checkout.url, 303)


@bp.get("/thanks")
@public
def thanks():
    session_id = request.args.get("session_id", "")
    donation = None
    if session_id:
        donation = get_session().execute(
            select(OnlineDonation).where(OnlineDonation.checkout_session_id == session_id[:255])
        ).scalar_one_or_none()
    return render_template("donate/thanks.html", donation=donation)


@bp.get("/cancelled")
@public
def cancelled():
    return render_template("donate/cancelled.html")

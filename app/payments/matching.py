"""Which online donation a Stripe event is about: by Stripe's own ids, never by metadata alone.

Form numbers are small and repeat: two installations on one Stripe account both have a
donation 7, and a database restored from a backup hands out 7 again while Stripe still
retries the events of the old 7. So an event is matched to a donation by the Stripe ids
stored on it: the Checkout Session's (stored when the session is created), then the payment
intent's or the subscription's, stored from an event already matched by its session or from
Stripe's own answer to "which Checkout Session made this?" (app.payments.events' prepare
steps). The metadata must also carry this installation's id and the donation's random
reference: a second check, compared on every event. Anything else is Unmatched: the webhook
acknowledges it, records nothing on any donation and lists it for staff.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from models import OnlineDonation, StripeInstall

#: The metadata keys this site writes on every Checkout Session, payment intent and
#: subscription. pending_gift_id and donor_id are sent too, for people reading the Stripe
#: Dashboard; they never decide a match.
INSTALL_KEY = "armslength_install"
REFERENCE_KEY = "armslength_donation"
INSTALL_ROW = 1


@dataclass(frozen=True)
class Unmatched:
    """An event that is about no online donation here, and why."""

    why: str
    #: The metadata that says whose it is, when the event's object does not carry it (a
    #: dispute: its payment's metadata, asked of Stripe), for the unmatched-event log.
    metadata: dict | None = None


def install_id(session: Session) -> str | None:
    """This installation's id, or None before the first donation created one."""
    row = session.get(StripeInstall, INSTALL_ROW)
    return row.install_id if row is not None else None


def ensure_install_id(session: Session) -> str:
    """This installation's id, made once (two first donations at once: one insert wins)."""
    found = install_id(session)
    if found is not None:
        return found
    try:
        session.add(StripeInstall(id=INSTALL_ROW, install_id=secrets.token_hex(16)))
        session.commit()
    except IntegrityError:
        session.rollback()
    return install_id(session)


def donation_metadata(donation: OnlineDonation, install: str) -> dict[str, str]:
    meta = {INSTALL_KEY: install, REFERENCE_KEY: donation.reference,
            "pending_gift_id": str(donation.id)}
    if donation.donor_id is not None:  # a new person's record is made at the payment
        meta["donor_id"] = str(donation.donor_id)
    return meta


def claims(metadata: dict | None) -> tuple[str | None, str | None]:
    """What metadata claims (installation, donation reference or form number), for the log."""
    meta = metadata or {}
    donation = meta.get(REFERENCE_KEY) or meta.get("pending_gift_id")
    install = meta.get(INSTALL_KEY)
    return (None if install is None else str(install)[:100],
            None if donation is None else str(donation)[:100])


def worth_asking_stripe(metadata: dict | None, install: str | None) -> bool:
    """Whether an unknown payment intent or subscription may be one of ours, so that asking
    Stripe for its Checkout Session is worth a call: its metadata names this installation,
    or it is a form number from before revision 0013. Never a match by itself."""
    meta = metadata or {}
    if INSTALL_KEY in meta:
        return install is not None and meta[INSTALL_KEY] == install
    return str(meta.get("pending_gift_id") or "").isdigit()


def names_another_installation(metadata: dict | None, install: str | None) -> bool:
    """Whether metadata says its payment was made by another installation's donate form
    (another Arm's Length on this Stripe account): it names an installation, not this one."""
    meta = metadata or {}
    return INSTALL_KEY in meta and (install is None or str(meta[INSTALL_KEY]) != install)


def foreign_payment(session: Session, payment_intent_id: str | None, metadata: dict | None,
                    install: str | None, recorded: bool) -> str | None:
    """Why a refund or dispute of this payment is another installation's, or None if it may
    be ours. Only on positive evidence: the payment is on no gift here (recorded False), no
    donation here stores its payment intent, and its metadata names another installation.
    A payment that may be ours (its metadata names this installation, or none; a monthly
    renewal's payment carries no metadata) keeps its refund waiting for its payment."""
    if recorded or not payment_intent_id or not names_another_installation(metadata, install):
        return None
    if stored(session, OnlineDonation.payment_intent_id, payment_intent_id) is not None:
        return None
    return (f"payment intent {payment_intent_id} is on no gift here and its metadata names "
            "another installation: not kept waiting")


def metadata_differs(donation: OnlineDonation, metadata: dict | None,
                     install: str | None) -> str | None:
    """None if the event's metadata is this donation's; otherwise what is wrong with it."""
    meta = metadata or {}
    if donation.reference is None:
        # Started before revision 0013: its Stripe objects carry the form number only.
        if REFERENCE_KEY in meta or str(meta.get("pending_gift_id")) != str(donation.id):
            return "its metadata names another donation"
        return None
    if install is None or meta.get(INSTALL_KEY) != install:
        return "its metadata names another installation" if INSTALL_KEY in meta else \
            "its metadata does not name this installation"
    if meta.get(REFERENCE_KEY) != donation.reference:
        return "its metadata names another donation"
    return None


def stored(session: Session, column, value: str | None) -> OnlineDonation | None:
    """The donation holding this Stripe id (each id column is unique)."""
    if not value:
        return None
    return session.execute(select(OnlineDonation).where(column == value)).scalar_one_or_none()


def _checked(donation: OnlineDonation, what: str, metadata: dict | None,
             install: str | None) -> OnlineDonation | Unmatched:
    why = metadata_differs(donation, metadata, install)
    if why is not None:
        return Unmatched(f"{what} is online donation {donation.id}'s, but {why}")
    return donation


def for_checkout_session(session: Session, checkout_session_id: str, metadata: dict | None,
                         install: str | None) -> OnlineDonation | Unmatched:
    donation = stored(session, OnlineDonation.checkout_session_id, checkout_session_id)
    if donation is None:
        return Unmatched(f"Checkout Session {checkout_session_id} was not created here")
    return _checked(donation, f"Checkout Session {checkout_session_id}", metadata, install)


def for_payment_intent(session: Session, payment_intent_id: str, checkout_session_id: str | None,
                       metadata: dict | None, install: str | None) -> OnlineDonation | Unmatched:
    """By the payment intent stored on a donation, else by the Checkout Session Stripe said
    made it (checkout_session_id, from the API)."""
    donation = stored(session, OnlineDonation.payment_intent_id, payment_intent_id)
    if donation is None:
        donation = stored(session, OnlineDonation.checkout_session_id, checkout_session_id)
        if donation is None:
            return Unmatched(f"payment intent {payment_intent_id} was made by no Checkout "
                             "Session created here")
        if donation.payment_intent_id not in (None, payment_intent_id):
            return Unmatched(f"online donation {donation.id} was paid by payment intent "
                             f"{donation.payment_intent_id}, not {payment_intent_id}")
    return _checked(donation, f"payment intent {payment_intent_id}", metadata, install)


def for_subscription(session: Session, subscription_id: str | None,
                     checkout_session_id: str | None, metadata: dict | None,
                     install: str | None) -> OnlineDonation | Unmatched:
    """By the subscription stored on a donation, else by the Checkout Session Stripe said
    started it (checkout_session_id, from the API)."""
    if not subscription_id:
        return Unmatched("not about a subscription")
    donation = stored(session, OnlineDonation.subscription_id, subscription_id)
    if donation is None:
        donation = stored(session, OnlineDonation.checkout_session_id, checkout_session_id)
        if donation is None:
            return Unmatched(f"subscription {subscription_id} was started by no Checkout "
                             "Session created here")
        if donation.subscription_id not in (None, subscription_id):
            return Unmatched(f"online donation {donation.id} is subscription "
                             f"{donation.subscription_id}, not {subscription_id}")
    return _checked(donation, f"subscription {subscription_id}", metadata, install)

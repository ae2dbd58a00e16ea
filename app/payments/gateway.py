"""The few Stripe API calls the app makes, through the official SDK.

Everything Stripe returns is turned into plain values here (the SDK's StripeObjects
are not dicts), so the rest of the app never depends on the SDK's object model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import stripe
from flask import current_app


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class Settlement:
    """A payment's balance transaction: what reached the Stripe balance, and when it was charged."""

    payment_intent_id: str
    charge_id: str | None
    charged_at: datetime | None
    balance_transaction_id: str
    #: Gross, fee and net in the settlement currency's minor units.
    gross_minor: int
    fee_minor: int
    net_minor: int
    currency: str
    exchange_rate: str | None


@dataclass(frozen=True)
class StripeRefund:
    id: str
    amount_minor: int
    currency: str
    status: str
    created: datetime
    reason: str | None
    payment_intent_id: str | None
    charge_id: str | None


@dataclass(frozen=True)
class Subscription:
    """A subscription as Stripe answered (API 2025-03-31+: the period is on its item)."""

    id: str
    #: active, past_due, unpaid, canceled, paused, incomplete, incomplete_expired, trialing.
    status: str
    #: pause_collection is set: Stripe voids the invoices it makes meanwhile.
    paused: bool
    #: The amount of each invoice from now on (minor units) and its currency (upper case).
    amount_minor: int | None
    currency: str | None
    #: When the current period ends: the next charge, unless paused, ending or ended.
    period_end: datetime | None
    cancel_at_period_end: bool
    item_id: str | None
    product_id: str | None

    @property
    def next_charge_at(self) -> datetime | None:
        if self.status in ("canceled", "incomplete_expired") or self.paused \
                or self.cancel_at_period_end:
            return None
        return self.period_end

    def as_dict(self) -> dict:
        """What Stripe answered, for an audit entry."""
        return {"subscription_id": self.id, "status": self.status, "paused": self.paused,
                "amount_minor": self.amount_minor, "currency": self.currency,
                "next_charge_at": self.next_charge_at.isoformat() if self.next_charge_at
                else None}


def subscription_from(data: dict) -> Subscription:
    items = (data.get("items") or {}).get("data") or []
    item = items[0] if items else {}
    price = item.get("price") or {}
    period_end = item.get("current_period_end") or data.get("current_period_end")
    amount = price.get("unit_amount")
    currency = price.get("currency") or data.get("currency")
    return Subscription(
        id=data["id"], status=str(data.get("status") or ""),
        paused=bool(data.get("pause_collection")),
        amount_minor=None if amount is None else int(amount) * int(item.get("quantity") or 1),
        currency=str(currency).upper() if currency else None,
        period_end=_instant(period_end),
        cancel_at_period_end=bool(data.get("cancel_at_period_end")),
        item_id=item.get("id"), product_id=_id(price.get("product")),
    )


def _instant(ts: int | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts else None


def _id(value) -> str | None:
    """An expandable field: an id string, or an expanded object with an id."""
    if value is None or isinstance(value, str):
        return value
    return value.get("id")


def refund_from(data: dict) -> StripeRefund:
    return StripeRefund(
        id=data["id"],
        amount_minor=int(data["amount"]),
        currency=str(data["currency"]).upper(),
        status=data.get("status") or "succeeded",
        created=_instant(data.get("created")) or datetime.now(UTC),
        reason=data.get("reason"),
        payment_intent_id=_id(data.get("payment_intent")),
        charge_id=_id(data.get("charge")),
    )


class StripeGateway:
    def __init__(self, secret_key: str, api_base: str, max_network_retries: int = 2):
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base},
            max_network_retries=max_network_retries,
        )

    def create_checkout_session(self, params: dict, idempotency_key: str) -> CheckoutSession:
        session = self.client.v1.checkout.sessions.create(
            params=params, options={"idempotency_key": idempotency_key}
        )
        return CheckoutSession(id=session.id, url=session.url)

    def checkout_session_for(self, *, payment_intent: str | None = None,
                             subscription: str | None = None) -> str | None:
        """The id of the Checkout Session that made this payment intent or subscription,
        or None if no Checkout Session did (Stripe's own answer, not the metadata's)."""
        params = {"payment_intent": payment_intent} if payment_intent else \
            {"subscription": subscription}
        listing = self.client.v1.checkout.sessions.list(params={**params, "limit": 1}).to_dict()
        found = listing.get("data") or []
        return found[0]["id"] if found else None

    def payment_settlement(self, payment_intent_id: str) -> Settlement | None:
        """The payment's charge and balance transaction, or None while Stripe has none."""
        intent = self.client.v1.payment_intents.retrieve(
            payment_intent_id, params={"expand": ["latest_charge.balance_transaction"]}
        ).to_dict()
        charge = intent.get("latest_charge")
        if not isinstance(charge, dict):
            return None
        txn = charge.get("balance_transaction")
        if not isinstance(txn, dict):
            return None
        rate = txn.get("exchange_rate")
        return Settlement(
            payment_intent_id=payment_intent_id,
            charge_id=charge.get("id"),
            charged_at=_instant(charge.get("created")),
            balance_transaction_id=txn["id"],
            gross_minor=int(txn["amount"]),
            fee_minor=int(txn.get("fee") or 0),
            net_minor=int(txn["net"]),
            currency=str(txn["currency"]).upper(),
            exchange_rate=None if rate is None else str(rate),
        )

    def payment_metadata(self, payment_intent_id: str) -> dict:
        """The payment intent's metadata (what the Checkout Session that made it wrote)."""
        intent = self.client.v1.payment_intents.retrieve(payment_intent_id).to_dict()
        return dict(intent.get("metadata") or {})

    def invoice_payment_intent(self, invoice_id: str) -> str | None:
        """The payment intent that paid an invoice (API 2025-03-31 and later keep it in
        the invoice's payments, not on the invoice)."""
        payments = self.client.v1.invoice_payments.list(
            params={"invoice": invoice_id, "status": "paid", "limit": 10}
        ).to_dict()
        for payment in payments.get("data", []):
            details = payment.get("payment") or {}
            if details.get("type") == "payment_intent" and details.get("payment_intent"):
                return _id(details["payment_intent"])
        return None

    def refunds_for_charge(self, charge_id: str) -> list[StripeRefund]:
        listing = self.client.v1.refunds.list(params={"charge": charge_id, "limit": 100}).to_dict()
        return [refund_from(item) for item in listing.get("data", [])]

    def refund(self, payment_intent_id: str, amount_minor: int, idempotency_key: str,
               metadata: dict[str, str]) -> StripeRefund:
        refund = self.client.v1.refunds.create(
            params={"payment_intent": payment_intent_id, "amount": amount_minor,
                    "metadata": metadata},
            options={"idempotency_key": idempotency_key},
        )
        return refund_from(refund.to_dict())

    def cancel_subscription(self, subscription_id: str) -> Subscription:
        # A DELETE: idempotent by nature, so Stripe takes no idempotency key for it.
        return subscription_from(self.client.v1.subscriptions.cancel(subscription_id).to_dict())

    def subscription(self, subscription_id: str) -> Subscription:
        return subscription_from(self.client.v1.subscriptions.retrieve(subscription_id).to_dict())

    def pause_subscription(self, subscription_id: str) -> Subscription:
        """Stop charging: Stripe voids the invoices it makes while paused (no debt builds up)."""
        return subscription_from(self.client.v1.subscriptions.update(
            subscription_id, params={"pause_collection": {"behavior": "void"}}).to_dict())

    def resume_subscription(self, subscription_id: str) -> Subscription:
        # An empty string unsets a field in Stripe's API.
        return subscription_from(self.client.v1.subscriptions.update(
            subscription_id, params={"pause_collection": ""}).to_dict())

    def change_subscription_amount(self, subscription_id: str, amount_minor: int) -> Subscription:
        """Charge amount_minor on each invoice from the next one on. No proration: the period
        already paid stays as paid, and nothing is charged or credited now."""
        current = self.subscription(subscription_id)
        if current.item_id is None or current.product_id is None or current.currency is None:
            raise stripe.InvalidRequestError(
                f"subscription {subscription_id} has no price to change", param="items")
        return subscription_from(self.client.v1.subscriptions.update(subscription_id, params={
            "items": [{"id": current.item_id, "quantity": 1, "price_data": {
                "currency": current.currency.lower(), "product": current.product_id,
                "unit_amount": amount_minor, "recurring": {"interval": "month"}}}],
            "proration_behavior": "none",
        }).to_dict())


def gateway() -> StripeGateway | None:
    """The app's gateway, or None when STRIPE_SECRET_KEY is not set."""
    config = current_app.config
    if not config.get("STRIPE_SECRET_KEY"):
        return None
    cached = current_app.extensions.get("armslength.stripe")
    if cached is None:
        cached = StripeGateway(config["STRIPE_SECRET_KEY"], config["STRIPE_API_BASE"],
                               int(config["STRIPE_MAX_NETWORK_RETRIES"]))
        current_app.extensions["armslength.stripe"] = cached
    return cached

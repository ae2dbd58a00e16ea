"""What deciding a held gift would do to the lab-employee share, for the reviewer.

A held gift is not counted in funding, so the ledger as it stands is the "reject" side:
the share and headroom without the gift. The "accept" side adds the gift (its amount and
the lab part its latest screening computed) to every window that would contain it. Of
those windows the one shown is the one the gift pushes highest, the one that decides.
Reads only; nothing here changes a decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from sqlmodel import Session

from app.ledger.windows import funding_facts
from models import Gift
from policies import Policy, below_cap, headroom, share


@dataclass(frozen=True)
class AcceptanceEffect:
    #: The window (of `window_days`, ending on this date) that accepting the gift affects most.
    window_end: date
    window_days: int
    share_without: Fraction
    share_with: Fraction
    #: The largest lab-employee gift still acceptable across the gift's windows.
    headroom_without_minor: int
    headroom_with_minor: int
    cap: Fraction
    #: Accepting keeps every window containing the gift strictly below the cap.
    within_cap: bool
    currency: str
    gift_lab_minor: int


def acceptance_effect(session: Session, gift: Gift, policy: Policy) -> AcceptanceEffect | None:
    """The share with and without a held cash gift; None when the gift is not a held cash
    gift (accepted money is counted already, in-kind support is not funding)."""
    if gift.status != "held" or gift.kind != "cash":
        return None
    windows = funding_facts(session, gift.received_on, policy.window_days).windows
    amount = gift.reporting_amount_minor
    lab = gift.lab_minor
    worst = max(windows, key=lambda w: (share(w.lab_minor + lab, w.total_minor + amount), w.end))
    return AcceptanceEffect(
        window_end=worst.end,
        window_days=policy.window_days,
        share_without=share(worst.lab_minor, worst.total_minor),
        share_with=share(worst.lab_minor + lab, worst.total_minor + amount),
        headroom_without_minor=min(headroom(w.lab_minor, w.total_minor, policy.cap)
                                   for w in windows),
        headroom_with_minor=min(headroom(w.lab_minor + lab, w.total_minor + amount, policy.cap)
                                for w in windows),
        cap=Fraction(policy.cap),
        within_cap=all(below_cap(w.lab_minor + lab, w.total_minor + amount, policy.cap)
                       for w in windows),
        currency=gift.reporting_currency,
        gift_lab_minor=lab,
    )

"""Pending changes and a proposed policy's replay as plain data: the API's JSON, the pages'.

Shares are decimal strings truncated to six places, amounts decimal strings in major units
of the reporting currency (as in app.presenters.compliance).
"""

from __future__ import annotations

from sqlmodel import Session

from app.ledger.changes import describe, expires_at, status_of
from app.ledger.whatif import ShareAtEnd, WhatIfResult
from models import PendingChange
from models.money import format_amount
from policies import Policy, headroom, share_text


def _iso(value):
    return value.isoformat() if value is not None else None


def change_public(session: Session, change: PendingChange, policy: Policy) -> dict:
    """`status` is the change's status now: a pending change past its time is "expired"
    even before the expiry is recorded. `expires_at`: until when a pending change may be
    approved, or when an expired one expired (null once approved or declined)."""
    status = status_of(change, policy)
    return {
        "id": change.id,
        "kind": change.kind,
        "target_id": change.target_id,
        "description": describe(session, change),
        "weakens": list(change.weakens),
        "proposed": change.proposed,
        "before": change.before,
        "status": status,
        "expires_at": (_iso(expires_at(change, policy)) if status in ("pending", "expired")
                       else None),
        "proposed_by": change.proposed_by_id,
        "proposed_at": _iso(change.proposed_at),
        "decided_by": change.decided_by_id,
        "decided_at": _iso(change.decided_at),
        "note": change.note,
        "policy_version_id": change.result_id,
    }


def _share(end: ShareAtEnd, currency: str) -> dict:
    return {
        "cap": str(end.cap),
        "window_days": end.window_days,
        "lab_employee_share": share_text(end.share),
        "headroom": format_amount(headroom(end.lab_minor, end.total_minor, end.cap), currency),
        "total_funding": format_amount(end.total_minor, currency),
        "lab_employee_funding": format_amount(end.lab_minor, currency),
        "in_breach": end.in_breach,
    }


def replay_public(result: WhatIfResult, currency: str) -> dict:
    """What the proposed version would have decided over the range, next to the version in
    force: the gifts decided differently, and the share and headroom at the end."""
    return {
        "from": _iso(result.start),
        "to": _iso(result.end),
        "policy_version_in_force": result.current_policy.version,
        "proposed_version": result.whatif_policy.version,
        "gifts_replayed": result.replayed,
        "changed_decisions": [{
            "gift_id": d.gift_id,
            "received_on": _iso(d.received_on),
            "donor_id": d.donor_id,
            "amount": format_amount(d.amount_minor, d.currency),
            "currency": d.currency,
            "status": d.actual_status,
            "outcome_in_force": d.current_outcome,
            "outcome_proposed": d.whatif_outcome,
            "rules": list(d.rules),
            "reasons": list(d.reasons),
        } for d in result.differences],
        "in_force": {**_share(result.current, currency),
                     "peak_share": share_text(result.current_peak)},
        "proposed": {**_share(result.whatif, currency),
                     "peak_share": share_text(result.whatif_peak)},
    }

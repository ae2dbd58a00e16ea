"""Plain-data shapes of campaigns, appeals and funds with their progress, for the API."""

from __future__ import annotations

from app.ledger.campaigns import Progress
from models import Appeal, Campaign, Fund
from models.money import format_amount
from policies import share_text


def _iso(value):
    return value.isoformat() if value is not None else None


def progress_public(p: Progress) -> dict:
    """What it raised: accepted cash net of refunds, decimal strings in its currency."""
    return {
        "id": p.id, "kind": p.kind, "code": p.code, "name": p.name, "active": p.active,
        "currency": p.currency,
        "goal": None if p.goal_minor is None else format_amount(p.goal_minor, p.currency),
        "raised": format_amount(p.raised_minor, p.currency),
        "gifts": p.gifts, "donors": p.donors,
        #: raised / goal as a decimal string ("0.4125"); null without a goal.
        "progress": None if p.share_of_goal is None else share_text(p.share_of_goal),
        **({"restricted": p.restricted} if p.kind == "fund" else {}),
    }


def item_public(row: Campaign | Appeal | Fund, progress: Progress) -> dict:
    """The record's own fields, and its progress."""
    data = progress_public(progress)
    if isinstance(row, Campaign):
        data.update(description=row.description, starts_on=_iso(row.starts_on),
                    ends_on=_iso(row.ends_on))
    elif isinstance(row, Appeal):
        data.update(campaign_id=row.campaign_id, channel=row.channel, sent_on=_iso(row.sent_on))
    else:
        data.update(restricted=row.restricted, purpose=row.purpose)
    data["created_at"] = _iso(row.created_at)
    return data

"""Plain-data shapes of interactions, tasks, contact preferences and giving summaries, for
the API (and anything else that publishes them as JSON)."""

from __future__ import annotations

from app.ledger.contacts import PREFERENCE_FIELDS
from app.ledger.profile import GivingSummary
from models import Donor, Interaction, Task
from models.money import format_amount


def _iso(value):
    return value.isoformat() if value is not None else None


def interaction_public(item: Interaction, author: str) -> dict:
    return {"id": item.id, "donor_id": item.donor_id, "kind": item.kind,
            "occurred_on": _iso(item.occurred_on), "summary": item.summary, "note": item.note,
            "author_id": item.author_id, "author": author, "created_at": _iso(item.created_at)}


def task_public(task: Task) -> dict:
    return {"id": task.id, "title": task.title, "donor_id": task.donor_id,
            "assignee_id": task.assignee_id, "due_on": _iso(task.due_on), "status": task.status,
            "note": task.note, "created_by_id": task.created_by_id,
            "created_at": _iso(task.created_at), "done_at": _iso(task.done_at),
            "done_by_id": task.done_by_id}


def preferences_public(donor: Donor) -> dict:
    return {"donor_id": donor.id, **{f: getattr(donor, f) for f in PREFERENCE_FIELDS}}


def giving_public(summary: GivingSummary, currency: str) -> dict:
    """Amounts as decimal strings in the reporting currency, like every amount in the API."""
    return {
        "currency": currency,
        "lifetime": format_amount(summary.lifetime_minor, currency),
        "this_year": format_amount(summary.this_year_minor, currency),
        "last_year": format_amount(summary.last_year_minor, currency),
        "largest": format_amount(summary.largest_minor, currency),
        "gift_count": summary.gift_count,
        "first_gift_on": _iso(summary.first_gift_on),
        "last_gift_on": _iso(summary.last_gift_on),
    }

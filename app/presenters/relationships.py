"""Relationships and households as the JSON API and the pages show them."""

from __future__ import annotations

from datetime import date

from app.ledger.relationships import Household, Related
from models import Relationship
from models.money import format_amount


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def relationship_public(rel: Relationship, today: date) -> dict:
    return {
        "id": rel.id,
        "donor_id": rel.donor_id,
        "related_donor_id": rel.related_donor_id,
        "kind": rel.kind,
        "start_date": _iso(rel.start_date),
        "end_date": _iso(rel.end_date),
        "current": rel.holds_on(today),
    }


def related_public(related: Related, today: date) -> dict:
    """A relationship seen from one of its people: the other one named."""
    return {**relationship_public(related.relationship, today),
            "other": {"id": related.other.id, "name": related.other.name}}


def household_public(found: Household, today: date) -> dict:
    money = lambda minor: format_amount(minor, found.currency)  # noqa: E731
    return {
        "id": found.id,
        "currency": found.currency,
        "as_of": today.isoformat(),
        "combined_giving": money(found.combined_minor),
        "attributed_from_outside": money(found.attributed_minor),
        "total": money(found.total_minor),
        "gift_count": found.gift_count,
        "members": [{
            "donor_id": m.donor.id,
            "name": m.donor.name,
            "given": money(m.giving.lifetime_minor),
            "soft_credit": money(m.soft_credit_minor),
            "gift_count": m.giving.gift_count,
            "last_gift_on": _iso(m.giving.last_gift_on),
        } for m in found.members],
        "relationships": [relationship_public(r, today) for r in found.relationships],
    }

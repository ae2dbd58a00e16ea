"""Tribute gifts: given in honour or in memory of a named person, perhaps with someone to
tell of it. The tribute is written with its gift, through the door (app.ledger.gifts and
the batched intake), sealed in the gift's own "gift.recorded" entry; the notification letter
is app.ledger.acknowledgements.tribute_letter."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from models import GiftTribute
from models.schemas import TributeIn

#: How a tribute reads on pages and letters.
KIND_WORDS = {"honour": "in honour of", "memory": "in memory of"}


def tribute_values(tribute: TributeIn, gift_id: int) -> dict:
    """The gift_tribute row a gift's tribute input becomes (no id)."""
    return {"gift_id": gift_id, "kind": tribute.kind, "honoree_name": tribute.name,
            "notify_name": tribute.notify_name, "notify_address": tribute.notify_address}


def tribute_of(session: Session, gift_id: int) -> GiftTribute | None:
    return session.execute(
        select(GiftTribute).where(GiftTribute.gift_id == gift_id)).scalar_one_or_none()


def tribute_public(tribute: GiftTribute | None) -> dict | None:
    """The API's shape of a tribute (GiftCreate's `tribute` input, as stored)."""
    if tribute is None:
        return None
    return {"kind": tribute.kind, "name": tribute.honoree_name,
            "notify_name": tribute.notify_name, "notify_address": tribute.notify_address}

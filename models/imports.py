"""Keys that records carry from the systems they were imported from."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.base import utcnow


class DonorExternalId(SQLModel, table=True):
    """A donor's id in the system a CSV import came from.

    Later files (affiliations, historical gifts) name donors by this id, and a donors
    file imported twice is refused because its ids are already here.
    """

    __tablename__ = "donor_external_id"

    id: int | None = Field(default=None, primary_key=True)
    #: The id as written in the imported file's external_id column; unique across imports.
    external_id: str = Field(max_length=200, unique=True)
    donor_id: int = Field(foreign_key="donor.id", unique=True)
    created_at: datetime = Field(default_factory=utcnow)

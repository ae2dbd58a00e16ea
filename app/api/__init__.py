"""The JSON API (/api/v1): the integration contract documented in docs/api.md."""

from app.api import (  # noqa: F401 - these register their routes on bp
    campaigns,
    change_routes,
    contacts,
    corrections,
    identity,
    jobs,
    public_support,
    recurring,
    relationships,
    segments,
)
from app.api.routes import bp

__all__ = ["bp"]

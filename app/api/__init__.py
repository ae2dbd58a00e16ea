"""The JSON API (/api/v1): the integration contract documented in docs/api.md."""

from app.api import change_routes  # noqa: F401 - registers its routes on bp
from app.api.routes import bp

__all__ = ["bp"]

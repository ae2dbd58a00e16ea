"""The staff navigation bar: an entry shows only if its page exists and the role may open it."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, url_for
from flask_login import current_user

#: (label, endpoint, permission), in display order.
NAV: tuple[tuple[str, str, str], ...] = (
    ("Donors", "donors.index", "read"),
    ("Tasks", "contacts.tasks", "read"),
    ("Organisations", "organizations.index", "read"),
    ("Gifts", "gifts.index", "read"),
    ("Pledges", "pledges.index", "read"),
    ("In-kind", "inkind.index", "read"),
    ("Online", "online.index", "read"),
    ("Review", "review.queue", "review"),
    ("Changes", "changes.index", "read"),
    ("Compliance", "compliance.dashboard", "read"),
    ("Finance", "finance.index", "read"),
    ("Reports", "reports.index", "read"),
    ("Public support", "public_support.index", "read"),
    ("Acknowledgements", "acknowledgements.index", "read"),
    ("Disclosures", "staff_disclosures.staff_index", "read"),
    ("Import", "imports.index", "gifts.write"),
    ("Export", "exports.index", "exports"),
    ("Audit", "audit.index", "read"),
    ("Admin", "admin.index", "admin"),
)


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str


def register_nav(app: Flask) -> None:
    @app.context_processor
    def _nav():
        def staff_nav() -> list[NavItem]:
            if not current_user.is_authenticated:
                return []
            return [
                NavItem(label, url_for(endpoint))
                for label, endpoint, permission in NAV
                if endpoint in app.view_functions and current_user.can(permission)
            ]

        return {"staff_nav": staff_nav}

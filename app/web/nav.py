"""The staff navigation: links grouped by the work they serve, each shown only if its page
exists and the signed-in role may open it; the current section is marked (aria-current)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, request, url_for
from flask_login import current_user

#: (group, ((label, endpoint, permission), ...)), in display order.
NAV_GROUPS: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    ("People", (
        ("Donors", "donors.index", "read"),
        ("Segments", "segments.index", "read"),
        ("Tasks", "contacts.tasks", "read"),
        ("Organisations", "organizations.index", "read"),
    )),
    ("Money", (
        ("Gifts", "gifts.index", "read"),
        ("Campaigns", "campaigns.index", "read"),
        ("Pledges", "pledges.index", "read"),
        ("Monthly", "recurring.index", "read"),
        ("In-kind", "inkind.index", "read"),
        ("Online", "online.index", "read"),
        ("Import", "imports.index", "gifts.write"),
    )),
    ("Compliance", (
        ("Review", "review.queue", "review"),
        ("Changes", "changes.index", "read"),
        ("Dashboard", "compliance.dashboard", "read"),
        ("Disclosures", "staff_disclosures.staff_index", "read"),
        ("Funding page", "staff_funding.preview", "read"),
        ("Audit", "audit.index", "read"),
    )),
    ("Finance", (
        ("Finance", "finance.index", "read"),
        ("Reports", "reports.index", "read"),
        ("Public support", "public_support.index", "read"),
        ("Acknowledgements", "acknowledgements.index", "read"),
        ("Export", "exports.index", "exports"),
    )),
    ("Admin", (
        ("Admin", "admin.index", "admin"),
    )),
)

#: Every entry as (label, endpoint, permission), in display order.
NAV: tuple[tuple[str, str, str], ...] = tuple(entry for _, entries in NAV_GROUPS for entry in entries)


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    #: "page" on the entry's own page, "true" elsewhere in its section, None otherwise.
    current: str | None = None


@dataclass(frozen=True)
class NavGroup:
    label: str
    items: tuple[NavItem, ...]

    @property
    def current(self) -> bool:
        return any(item.current for item in self.items)


def _current(endpoint: str) -> str | None:
    here = request.endpoint or ""
    if here == endpoint:
        return "page"
    # A page of the same blueprint (a donor's page, a new gift) is in that entry's section.
    if "." in here and here.split(".", 1)[0] == endpoint.split(".", 1)[0]:
        return "true"
    return None


def staff_nav_groups(app: Flask) -> list[NavGroup]:
    """The groups the signed-in user may use, each with the entries they may open."""
    if not current_user.is_authenticated:
        return []
    groups = []
    for label, entries in NAV_GROUPS:
        items = tuple(NavItem(name, url_for(endpoint), _current(endpoint))
                      for name, endpoint, permission in entries
                      if endpoint in app.view_functions and current_user.can(permission))
        if items:
            groups.append(NavGroup(label, items))
    return groups


def register_nav(app: Flask) -> None:
    @app.context_processor
    def _nav():
        def staff_nav() -> list[NavItem]:
            return [item for group in staff_nav_groups(app) for item in group.items]

        return {"staff_nav": staff_nav, "staff_nav_groups": lambda: staff_nav_groups(app)}

"""Finding donors, gifts and organisations by what a person types: one way for every screen.

The donor list's search box, the gift form's donor picker, the API's ?q=, the CSV
import's organisation column, the donate form's employer and the staff pages' search box
all look things up here.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, String, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session

from models import Affiliation, Donor, Gift, Organization
from policies.identity import organization_key

#: Ids are INTEGER columns (PostgreSQL int4); a larger "#id" names no record.
MAX_ID = 2**31 - 1


def like_pattern(term: str) -> str:
    """A case-insensitive LIKE pattern matching `term` literally anywhere (\\ escapes)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class unicode_lower(FunctionElement):  # noqa: N801 (an SQL function's name)
    """lower() that folds every script's case. PostgreSQL's lower() does; SQLite's built-in
    one folds ASCII letters only ("Ж" stays "Ж"), so on SQLite this calls a Python
    function each connection registers (app.db: unicode_lower)."""

    type = String()
    inherit_cache = True
    name = "unicode_lower"


@compiles(unicode_lower)
def _lower_default(element, compiler, **kw):
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(unicode_lower, "sqlite")
def _lower_sqlite(element, compiler, **kw):
    return f"unicode_lower({compiler.process(element.clauses, **kw)})"


def contains_text(column, term: str) -> ColumnElement[bool]:
    """`column` contains `term`, ignoring case in any script (Cyrillic, Greek, accents)."""
    return unicode_lower(column).like(like_pattern(term.lower()), escape="\\")


def donors_matching(term: str, *, by_id: bool = False,
                    organization_ids: Collection[int] = ()) -> ColumnElement[bool]:
    """Donors whose name or email contains `term` (case-insensitively); with by_id, also the
    donor "#12" or "12" names; also the donors of these organisations (their own, or one
    they are affiliated with), typically OrganizationNames.containing(term)."""
    conditions = [contains_text(Donor.name, term), contains_text(Donor.email, term)]
    digits = term.removeprefix("#")
    if by_id and digits.isdigit() and int(digits) <= MAX_ID:
        conditions.append(Donor.id == int(digits))
    if organization_ids:
        affiliated = select(Affiliation.donor_id).where(
            Affiliation.organization_id.in_(organization_ids))
        conditions += [Donor.organization_id.in_(organization_ids), Donor.id.in_(affiliated)]
    return or_(*conditions)


def gifts_matching(term: str) -> ColumnElement[bool]:
    """The gift a person names by its number ("#12" or "12"), or by a payment's own id as
    Stripe or an import gave it (payment intent, checkout session, invoice, external
    reference): those are unique, so matched exactly, case and blanks as typed."""
    term = term.strip()
    conditions = [Gift.stripe_payment_intent_id == term, Gift.stripe_checkout_session_id == term,
                  Gift.stripe_invoice_id == term, Gift.external_ref == term]
    digits = term.removeprefix("#")
    if digits.isdigit() and int(digits) <= MAX_ID:
        conditions.append(Gift.id == int(digits))
    return or_(*conditions)


class OrganizationNames:
    """Every organisation's name and aliases, read once, matched case-insensitively in any
    script. The register is small and aliases are a JSON list, so this matches in Python;
    one instance serves a whole import."""

    def __init__(self, session: Session):
        self._names: list[tuple[int, str, list[str]]] = []
        self._by_name: dict[str, set[int]] = {}
        self._by_alias: dict[str, set[int]] = {}
        #: By name and alias without legal forms and punctuation (policies.identity).
        self._by_organization_key: dict[str, set[int]] = {}
        for org_id, name, aliases in session.execute(
            select(Organization.id, Organization.name, Organization.aliases)
            .order_by(Organization.id)
        ):
            aliases = [str(a) for a in aliases or []]
            self._names.append((org_id, name.casefold(), [a.casefold() for a in aliases]))
            self._by_name.setdefault(_key(name), set()).add(org_id)
            for alias in aliases:
                self._by_alias.setdefault(_key(alias), set()).add(org_id)
            for text in [name, *aliases]:
                self._by_organization_key.setdefault(organization_key(text), set()).add(org_id)

    def containing(self, term: str) -> list[int]:
        """Organisations whose name or an alias contains `term`, by id."""
        needle = term.casefold()
        return [org_id for org_id, name, aliases in self._names
                if needle in name or any(needle in a for a in aliases)]

    def named(self, text: str) -> list[int]:
        """Organisations whose name is exactly `text` (case and surrounding blanks aside),
        by id; if none, those with it as an alias."""
        key = _key(text)
        return sorted(self._by_name.get(key) or self._by_alias.get(key) or ())

    def named_loosely(self, text: str) -> list[int]:
        """named(), else the organisations whose name or an alias is `text` once legal
        forms, accents and punctuation are set aside ("Halcyon Labs, Inc.")."""
        return self.named(text) or sorted(
            self._by_organization_key.get(organization_key(text), ()) if organization_key(text)
            else ())

    def named_or_aliased(self, text: str) -> list[int]:
        """Organisations whose name or an alias is exactly `text`, by id."""
        key = _key(text)
        return sorted(self._by_name.get(key, set()) | self._by_alias.get(key, set()))


def _key(text: str) -> str:
    return text.strip().casefold()

"""Plain facts the rules read. The caller gathers them; the rules never touch a database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction


@dataclass(frozen=True)
class AffiliationFact:
    organization: str
    #: The organisation is a covered lab or an affiliate of one.
    covered: bool
    kind: str
    title: str | None
    senior_decision_maker: bool
    start_date: date
    end_date: date | None = None
    #: Only typed on the public donate form, not on the donor's record: a claim, screened
    #: as if true (conservatively) and held for a reviewer (rule declaration_differs).
    declared: bool = False
    #: The title a reviewer confirmed is not a senior decision-maker's (None: never reviewed).
    #: Rule possible_senior_decision_maker does not ask again while the title is still this.
    title_cleared: str | None = None


@dataclass(frozen=True)
class MatchFact:
    """Another record that may be the same person as a party: a donor, or a roster entry
    (someone known to work at a covered lab who is not a donor). Only records with an
    affiliation to a covered lab are gathered: the others cannot change a decision."""

    record: str  # "donor" | "roster"
    record_id: int
    name: str
    #: Jaro-Winkler similarity of the sorted, folded names (policies.identity).
    name_similarity: Decimal
    same_email: bool = False
    same_phone: bool = False
    same_address: bool = False
    #: One name gives the given name as an initial only and it agrees (policies.identity).
    same_initial: bool = False
    #: The other record's affiliations to covered organisations (a roster entry's one), as
    #: for a party: the only ones a rule looks at.
    affiliations: tuple[AffiliationFact, ...] = ()
    #: A reviewer recorded that this pair are different people: never asked again.
    different: bool = False


@dataclass(frozen=True)
class RelativeFact:
    """Someone a party is related to (app.ledger.relationships), with the dates of the
    relationship and the relative's affiliations to covered organisations (the only ones
    a rule looks at)."""

    donor_id: int
    name: str
    #: "household" | "spouse_partner" | "family" | "colleague"
    kind: str
    start_date: date
    #: Last day the relationship held (inclusive); None while it lasts.
    end_date: date | None = None
    affiliations: tuple[AffiliationFact, ...] = ()

    def holds_on(self, day: date) -> bool:
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)


@dataclass(frozen=True)
class Party:
    """A donor the money comes from: the payer, or someone it is attributed to."""

    donor_id: int
    name: str
    type: str  # "person" | "organization"
    #: Share of the gift attributed to this party (the payer carries 1).
    fraction: Fraction = Fraction(1)
    #: For an organisation donor: the organisation's name and whether it is covered.
    organization: str | None = None
    organization_covered: bool = False
    affiliations: tuple[AffiliationFact, ...] = ()
    #: Other records that may be this person (app.ledger.identity gathers them).
    possible_matches: tuple[MatchFact, ...] = ()
    #: The people this party is related to (household, spouse or partner, family, colleague).
    relatives: tuple[RelativeFact, ...] = ()


@dataclass(frozen=True)
class GiftFacts:
    received_on: date
    #: Amount in the reporting currency's minor units.
    amount_minor: int
    currency: str
    kind: str = "cash"  # "cash" | "in_kind"
    purpose: str = "general"  # "general" | "restricted" | "evaluation_services"
    payer: Party | None = None
    attributions: tuple[Party, ...] = ()
    is_matching_gift: bool = False

    @property
    def parties(self) -> tuple[Party, ...]:
        return ((self.payer,) if self.payer else ()) + self.attributions


@dataclass(frozen=True)
class WindowTotals:
    """Accepted funding in the trailing window ending on `end`, refunds applied."""

    end: date
    total_minor: int
    lab_minor: int


@dataclass(frozen=True)
class FundingFacts:
    """The window ending on the gift date, then one per later decision point."""

    windows: tuple[WindowTotals, ...]

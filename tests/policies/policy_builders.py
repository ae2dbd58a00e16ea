"""Small builders for the pure policy tests: readable facts with sensible defaults.

Not a test module (pytest does not collect it); the policy tests import it by name.
"""

from __future__ import annotations

import copy
import tomllib
from datetime import date, timedelta
from fractions import Fraction

from policies import (
    DEFAULT_POLICY_FILE,
    AffiliationFact,
    FundingFacts,
    GiftFacts,
    Party,
    Policy,
    WindowTotals,
    load_policy,
)
from policies.document import policy_from_mapping

#: The date every gift in these tests arrives on, unless a test says otherwise.
GIFT_DAY = date(2026, 6, 30)
LAB = "Frontier Lab"


def days(n: int) -> timedelta:
    return timedelta(days=n)


# --- policy documents -------------------------------------------------------------------


def default_doc() -> dict:
    """The shipped policy document as a fresh, freely mutable mapping."""
    with DEFAULT_POLICY_FILE.open("rb") as handle:
        return tomllib.load(handle)


def policy(**changes) -> Policy:
    """The shipped policy with dotted-path overrides.

    policy(**{"outcomes.lab_in_kind": "hold", "lab_employee_share.cap": "0.25"})
    """
    if not changes:
        return load_policy()
    doc = copy.deepcopy(default_doc())
    for dotted, value in changes.items():
        *path, key = dotted.split(".")
        node = doc
        for part in path:
            node = node[part]
        node[key] = value
    return policy_from_mapping(doc)


# --- parties ----------------------------------------------------------------------------


def job(
    organization: str = LAB,
    *,
    covered: bool = True,
    senior: bool = False,
    start: date = date(2020, 1, 1),
    end: date | None = None,
    kind: str = "employee",
    title: str | None = None,
) -> AffiliationFact:
    """An affiliation; by default an ordinary, current job at a covered lab."""
    if title is None:
        title = "Chief Scientist" if senior else "Research Engineer"
    return AffiliationFact(
        organization=organization,
        covered=covered,
        kind=kind,
        title=title,
        senior_decision_maker=senior,
        start_date=start,
        end_date=end,
    )


def person(
    name: str = "Pat Donor",
    *jobs: AffiliationFact,
    donor_id: int = 1,
    fraction: Fraction | int = 1,
) -> Party:
    return Party(
        donor_id=donor_id,
        name=name,
        type="person",
        fraction=Fraction(fraction),
        affiliations=tuple(jobs),
    )


def lab_employee(name: str = "Lee Employee", *, donor_id: int = 2, fraction=1) -> Party:
    return person(name, job(), donor_id=donor_id, fraction=fraction)


def senior(name: str = "Sam Senior", *, donor_id: int = 3, fraction=1, **job_args) -> Party:
    return person(name, job(senior=True, **job_args), donor_id=donor_id, fraction=fraction)


def organization(
    name: str = "Open Foundation",
    *,
    covered: bool = False,
    donor_id: int = 50,
    fraction=1,
) -> Party:
    return Party(
        donor_id=donor_id,
        name=name,
        type="organization",
        fraction=Fraction(fraction),
        organization=name,
        organization_covered=covered,
    )


def lab_org(name: str = LAB, *, donor_id: int = 100, fraction=1) -> Party:
    """A covered lab, or (same shape, other name) one of its affiliates."""
    return organization(name, covered=True, donor_id=donor_id, fraction=fraction)


# --- gifts and funding ------------------------------------------------------------------


def gift(
    payer: Party | None = None,
    amount: int = 10_000,
    *,
    on: date = GIFT_DAY,
    kind: str = "cash",
    purpose: str = "general",
    attributions: tuple[Party, ...] | list[Party] = (),
    matching: bool = False,
    currency: str = "USD",
) -> GiftFacts:
    return GiftFacts(
        received_on=on,
        amount_minor=amount,
        currency=currency,
        kind=kind,
        purpose=purpose,
        payer=payer if payer is not None else person(),
        attributions=tuple(attributions),
        is_matching_gift=matching,
    )


def window(total: int, lab: int, end: date = GIFT_DAY) -> WindowTotals:
    return WindowTotals(end=end, total_minor=total, lab_minor=lab)


def funding(*windows: WindowTotals) -> FundingFacts:
    return FundingFacts(windows=tuple(windows))


#: Lots of non-lab money: the cap never matters.
PLENTY = funding(window(100_000_000, 0))
#: No funding at all: no window was given.
NO_WINDOWS = funding()
#: A window that exists but holds nothing.
EMPTY_WINDOW = funding(window(0, 0))

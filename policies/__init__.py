"""The independence policy: pure rules over plain facts. No database, no Flask, no clock."""

from policies.document import DEFAULT_POLICY_FILE, Policy, PolicyError, load_policy
from policies.engine import Evaluation, evaluate
from policies.facts import (
    AffiliationFact,
    FundingFacts,
    GiftFacts,
    MatchFact,
    Party,
    RelativeFact,
    WindowTotals,
)
from policies.rules import Finding
from policies.share import (
    below_cap,
    headroom,
    lab_affiliations,
    lab_employee_minor,
    percent_text,
    share,
    share_text,
)

__all__ = [
    "DEFAULT_POLICY_FILE",
    "AffiliationFact",
    "Evaluation",
    "Finding",
    "FundingFacts",
    "GiftFacts",
    "MatchFact",
    "Party",
    "Policy",
    "PolicyError",
    "RelativeFact",
    "WindowTotals",
    "below_cap",
    "evaluate",
    "headroom",
    "lab_affiliations",
    "lab_employee_minor",
    "load_policy",
    "percent_text",
    "share",
    "share_text",
]

"""Run every rule and combine: reject beats hold beats accept.

evaluate() is pure: same facts in, same Evaluation out, nothing written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from policies.document import Policy
from policies.facts import FundingFacts, GiftFacts
from policies.rules import RULES, Finding
from policies.share import share_text

SEVERITY = {"accept": 0, "hold": 1, "reject": 2}


@dataclass(frozen=True)
class Evaluation:
    outcome: str
    policy_version: str
    findings: tuple[Finding, ...]
    figures: dict
    disclose: bool

    @property
    def fired(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.fired)

    def reasons(self) -> list[dict]:
        """Every rule considered, fired ones first, as stored on the decision."""
        ordered = sorted(self.findings, key=lambda f: (not f.fired, -SEVERITY[f.outcome]))
        return [
            {"rule": f.rule, "outcome": f.outcome, "fired": f.fired, "message": f.message}
            for f in ordered
        ]


def _plain(value):
    """Figures as JSON-ready values: shares as truncated decimal strings, dates as ISO."""
    if isinstance(value, Fraction):
        return share_text(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def combine(findings: tuple[Finding, ...]) -> str:
    return max((f.outcome for f in findings if f.fired), key=SEVERITY.__getitem__,
               default="accept")


def evaluate(policy: Policy, gift: GiftFacts, funding: FundingFacts) -> Evaluation:
    findings = tuple(rule.check(policy, gift, funding) for rule in RULES)
    figures: dict = {
        "cap": str(policy.cap),
        "warning": str(policy.warning),
        "window_days": policy.window_days,
        "cooling_off_days": policy.cooling_off_days,
        "currency": gift.currency,
        "gift_amount_minor": gift.amount_minor,
    }
    for finding in findings:
        figures.update({key: _plain(value) for key, value in finding.figures.items()})
    return Evaluation(
        outcome=combine(findings),
        policy_version=policy.version,
        findings=findings,
        figures=figures,
        disclose=any(f.disclose and f.fired for f in findings),
    )

"""The declaration_differs rule: what someone typed on the donate form about a donor on file
is screened as if true, and a gift whose declaration the record does not show is held."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from policies import Evaluation, evaluate
from policies.document import policy_from_mapping
from tests.policies.policy_builders import (
    GIFT_DAY,
    PLENTY,
    days,
    default_doc,
    funding,
    gift,
    job,
    organization,
    person,
    policy,
    window,
)

DIFFERS = "declaration_differs"


def declared(**job_args):
    """A lab role typed on the donate form, from the gift day, as the donate form gives it."""
    return dataclasses.replace(job(start=GIFT_DAY, **job_args), declared=True)


def fired(evaluation: Evaluation) -> set[str]:
    return {f.rule for f in evaluation.fired}


def row(id, facts, money, outcome, rules):
    return pytest.param(facts, money, outcome, set(rules), id=id)


DECISIONS = [
    row("nothing declared: accepted", gift(person()), PLENTY, "accept", []),
    row("an employee role the record does not show: held",
        gift(person("Pat", declared())), PLENTY, "hold", [DIFFERS]),
    row("the same role on file: nothing differs",
        gift(person("Pat", job(), declared())), PLENTY, "accept", []),
    row("a senior role declared, an ordinary job on file: the senior part differs, and the "
        "declared senior role is screened as if true (reject beats hold)",
        gift(person("Pat", job(), declared(senior=True))), PLENTY, "reject",
        [DIFFERS, "senior_decision_maker"]),
    row("an ordinary job declared, a senior role on file: the record says more, nothing differs",
        gift(person("Pat", job(senior=True), declared())), PLENTY, "reject",
        ["senior_decision_maker"]),
    row("a job at another lab on file does not cover the declared one",
        gift(person("Pat", job("Other Lab"), declared())), PLENTY, "hold", [DIFFERS]),
    row("a job on file that ended within the cooling-off period still counts",
        gift(person("Pat", job(end=GIFT_DAY - days(30)), declared())), PLENTY, "accept", []),
    row("a job on file that ended long ago does not",
        gift(person("Pat", job(end=GIFT_DAY - days(800)), declared())), PLENTY, "hold",
        [DIFFERS]),
    row("a declared organisation that is not a covered lab does not matter to the policy",
        gift(person("Pat", declared(organization="Corner Shop", covered=False))), PLENTY,
        "accept", []),
    row("a declared role is screened as if true: it counts against the cap",
        gift(person("Pat", declared()), 10_000), funding(window(10_000, 0)), "reject",
        [DIFFERS, "lab_employee_cap"]),
    row("through a donor-advised fund: the advisor's declaration is looked at",
        gift(organization("Good Fund"), attributions=[person("Pat", declared())]), PLENTY,
        "hold", [DIFFERS]),
]


@pytest.mark.parametrize(("facts", "money", "outcome", "rules"), DECISIONS)
def test_decision_table(facts, money, outcome, rules):
    evaluation = evaluate(policy(), facts, money)
    assert evaluation.outcome == outcome
    assert fired(evaluation) == rules
    assert DIFFERS in {r["rule"] for r in evaluation.reasons()}


def test_the_message_names_the_claim_and_what_a_reviewer_does():
    evaluation = evaluate(policy(), gift(person("Pat Donor", declared(senior=True))), PLENTY)
    finding = next(f for f in evaluation.findings if f.rule == DIFFERS)
    assert (finding.fired, finding.outcome) == (True, "hold")
    assert "Pat Donor (senior decision-maker at Frontier Lab)" in finding.message
    assert "not on the donor's record" in finding.message
    assert "applies the declaration" in finding.message and "dismisses" in finding.message


def test_a_document_from_before_the_rule_holds_by_default_and_may_choose():
    doc = copy.deepcopy(default_doc())
    doc["outcomes"].pop(DIFFERS, None)
    assert policy_from_mapping(doc).outcomes[DIFFERS] == "hold"
    doc["outcomes"][DIFFERS] = "reject"
    stricter = policy_from_mapping(doc)
    assert evaluate(stricter, gift(person("Pat", declared())), PLENTY).outcome == "reject"

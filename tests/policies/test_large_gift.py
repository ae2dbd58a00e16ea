"""The large_gift rule: a cash gift at or above the policy's threshold waits for a reviewer.

Also the proof that a rule added later describes itself: its outcome and setting come
from the policy document, and a document stored before the rule existed still loads.
"""

from __future__ import annotations

import copy

import pytest

from policies import Evaluation, PolicyError, evaluate, load_policy
from policies.document import RULE_IDS, policy_from_mapping
from tests.policies.policy_builders import (
    PLENTY,
    default_doc,
    funding,
    gift,
    lab_employee,
    lab_org,
    organization,
    person,
    policy,
    window,
)

LARGE = "large_gift"
THRESHOLD = load_policy().settings[LARGE]["threshold_minor"]


def fired(evaluation: Evaluation) -> set[str]:
    return {f.rule for f in evaluation.fired}


def row(id, facts, money, outcome, rules):
    return pytest.param(facts, money, outcome, set(rules), id=id)


DECISIONS = [
    row("one minor unit below the threshold is accepted",
        gift(person(), THRESHOLD - 1), PLENTY, "accept", []),
    row("exactly the threshold is held", gift(person(), THRESHOLD), PLENTY, "hold", [LARGE]),
    row("above the threshold is held", gift(person(), THRESHOLD + 1), PLENTY, "hold", [LARGE]),
    row("a foundation's large grant is held too",
        gift(organization(), 50 * THRESHOLD), PLENTY, "hold", [LARGE]),
    row("large in-kind support is not money: not held for its size",
        gift(organization(), THRESHOLD, kind="in_kind"), PLENTY, "accept", []),
    row("a large gift from a covered lab: held, both rules say why",
        gift(lab_org(), THRESHOLD), PLENTY, "hold", [LARGE, "lab_corporate_money"]),
    row("a large lab-employee gift that breaks the cap: reject beats hold",
        gift(lab_employee(), THRESHOLD), funding(window(THRESHOLD, 0)), "reject",
        [LARGE, "lab_employee_cap"]),
    row("a large lab-employee gift within the cap: held",
        gift(lab_employee(), THRESHOLD), funding(window(10 * THRESHOLD, 0)), "hold", [LARGE]),
]


@pytest.mark.parametrize(("facts", "money", "outcome", "rules"), DECISIONS)
def test_decision_table(facts, money, outcome, rules):
    evaluation = evaluate(policy(), facts, money)
    assert evaluation.outcome == outcome
    assert fired(evaluation) == rules
    assert LARGE in {r["rule"] for r in evaluation.reasons()}


def test_the_message_says_why():
    finding = next(f for f in evaluate(policy(), gift(person(), THRESHOLD), PLENTY).findings
                   if f.rule == LARGE)
    assert (finding.fired, finding.outcome) == (True, "hold")
    assert "large-gift threshold" in finding.message and "reviewer" in finding.message


@pytest.mark.parametrize(("outcome", "threshold", "amount", "expected"), [
    pytest.param("reject", THRESHOLD, THRESHOLD, "reject", id="the document may reject"),
    pytest.param("accept", THRESHOLD, THRESHOLD, "accept", id="the document may only note it"),
    pytest.param("hold", 500, 500, "hold", id="a lower threshold holds smaller gifts"),
    pytest.param("hold", 500, 499, "accept", id="just below a lower threshold"),
])
def test_outcome_and_threshold_come_from_the_document(outcome, threshold, amount, expected):
    changed = policy(**{f"outcomes.{LARGE}": outcome, f"{LARGE}.threshold_minor": threshold})
    assert changed.settings[LARGE] == {"threshold_minor": threshold}
    assert evaluate(changed, gift(person(), amount), PLENTY).outcome == expected


def _document_before_the_rule() -> dict:
    """A policy document as stored before large_gift existed: no outcome, no table."""
    doc = copy.deepcopy(default_doc())
    doc["version"] = "2026.1"
    del doc["outcomes"][LARGE]
    del doc[LARGE]
    return doc


def test_a_document_stored_before_the_rule_still_loads_and_never_holds_for_size():
    older = policy_from_mapping(_document_before_the_rule())
    assert older.outcomes[LARGE] == "hold"  # the rule's default outcome
    assert older.settings[LARGE] == {}
    evaluation = evaluate(older, gift(person(), 10**11), PLENTY)
    assert evaluation.outcome == "accept" and fired(evaluation) == set()
    finding = next(f for f in evaluation.findings if f.rule == LARGE)
    assert finding.message == "This policy version sets no large-gift threshold."


def test_the_shipped_document_names_the_rule_and_is_a_new_version():
    shipped = load_policy()
    assert LARGE in RULE_IDS
    assert shipped.version != "2026.1"  # 2026.1 had no large_gift rule
    assert shipped.outcomes[LARGE] == "hold" and THRESHOLD == 100_000_000
    assert "held for a decision by a compliance reviewer" in shipped.statement(LARGE)


@pytest.mark.parametrize("threshold", [
    pytest.param(0, id="zero"),
    pytest.param(-1, id="negative"),
    pytest.param("100000000", id="a string"),
    pytest.param(1.5, id="a float"),
    pytest.param(True, id="a bool"),
])
def test_a_bad_threshold_is_a_policy_error(threshold):
    with pytest.raises(PolicyError, match=r"\[large_gift\] threshold_minor"):
        policy(**{f"{LARGE}.threshold_minor": threshold})


def test_the_rules_table_must_be_a_table():
    doc = copy.deepcopy(default_doc())
    doc[LARGE] = 100
    with pytest.raises(PolicyError, match=r"\[large_gift\] must be a table"):
        policy_from_mapping(doc)


def test_a_bad_outcome_is_a_policy_error():
    with pytest.raises(PolicyError, match=LARGE):
        policy(**{f"outcomes.{LARGE}": "deny"})

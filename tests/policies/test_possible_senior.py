"""The possible_senior_decision_maker rule: a title at a covered lab that reads like a senior
role, without the senior flag, holds the gift until a reviewer confirms or clears it."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from policies import evaluate
from policies.document import PolicyError, policy_from_mapping
from policies.rules import DEFAULT_SENIOR_TITLES, senior_title_pattern
from tests.policies.policy_builders import (
    GIFT_DAY,
    PLENTY,
    days,
    default_doc,
    gift,
    job,
    organization,
    person,
    policy,
)

RULE = "possible_senior_decision_maker"


def fired(evaluation) -> set[str]:
    return {f.rule for f in evaluation.fired}


def titled(title, **job_args):
    return person("Morgan Chen", job(title=title, **job_args))


def row(id, facts, outcome, rules):
    return pytest.param(facts, outcome, set(rules), id=id)


DECISIONS = [
    row("an ordinary title: accepted", gift(titled("Research Engineer")), "accept", []),
    row("Vice President of Research, not marked senior: held",
        gift(titled("Vice President of Research")), "hold", [RULE]),
    row("VP, in capitals and abbreviated: held", gift(titled("VP Research")), "hold", [RULE]),
    row("lower case still matches", gift(titled("head of policy")), "hold", [RULE]),
    row("a hyphen for the space: held", gift(titled("Vice-President")), "hold", [RULE]),
    row("co-founder: held", gift(titled("Co-founder")), "hold", [RULE]),
    row("CEO: held", gift(titled("CEO")), "hold", [RULE]),
    row("board member: held", gift(titled("Board Member")), "hold", [RULE]),
    row("decided: the assistant of a director is asked about once (whole word 'Director's')",
        gift(titled("Research Director's assistant")), "hold", [RULE]),
    row("no whole word: MVP is not VP", gift(titled("MVP engineer")), "accept", []),
    row("no whole word: Directory is not director", gift(titled("Directory admin")), "accept",
        []),
    row("no whole word: Headcount is not head of", gift(titled("Headcount analyst")), "accept",
        []),
    row("marked senior: the senior rule rejects and this one is silent",
        gift(person("Morgan Chen", job(title="Vice President", senior=True))), "reject",
        ["senior_decision_maker"]),
    row("cleared by a reviewer for this very title: accepted",
        gift(person("Morgan Chen", dataclasses.replace(job(title="Vice President"),
                                                       title_cleared="Vice President"))),
        "accept", []),
    row("cleared for an earlier title: asked again",
        gift(person("Morgan Chen", dataclasses.replace(job(title="Chief of Staff"),
                                                       title_cleared="Programme Lead"))),
        "hold", [RULE]),
    row("not a covered lab: nothing to ask",
        gift(titled("Vice President", organization="Corner Shop", covered=False)), "accept", []),
    row("ended within the cooling-off period: still asked",
        gift(titled("Director", end=GIFT_DAY - days(30))), "hold", [RULE]),
    row("ended long before: not asked",
        gift(titled("Director", end=GIFT_DAY - days(800))), "accept", []),
    row("starts after the gift: not asked",
        gift(titled("Director", start=GIFT_DAY + days(1))), "accept", []),
    row("a declared role is declaration_differs' business, not a title question",
        gift(person("Morgan Chen", dataclasses.replace(job(title="Director", start=GIFT_DAY),
                                                       declared=True))),
        "hold", ["declaration_differs"]),
    row("through a donor-advised fund: the advisor's title is looked at",
        gift(organization("Good Fund"), attributions=[titled("President")]), "hold", [RULE]),
]


@pytest.mark.parametrize(("facts", "outcome", "rules"), DECISIONS)
def test_decision_table(facts, outcome, rules):
    evaluation = evaluate(policy(), facts, PLENTY)
    assert evaluation.outcome == outcome
    assert fired(evaluation) == rules
    assert RULE in {r["rule"] for r in evaluation.reasons()}


def test_the_message_names_the_person_title_lab_and_words():
    evaluation = evaluate(policy(), gift(titled("Vice President of Research")), PLENTY)
    finding = next(f for f in evaluation.findings if f.rule == RULE)
    assert (finding.fired, finding.outcome) == (True, "hold")
    assert ('Morgan Chen (Vice President of Research at Frontier Lab: "Vice President")'
            in finding.message)
    assert "confirms the senior flag or clears the title" in finding.message


def test_the_policy_file_lists_the_titles_and_a_new_version_may_change_them():
    doc = copy.deepcopy(default_doc())
    assert tuple(doc[RULE]["titles"]) == DEFAULT_SENIOR_TITLES
    doc[RULE]["titles"] = ["overlord"]
    custom = policy_from_mapping(doc)
    assert evaluate(custom, gift(titled("Vice President")), PLENTY).outcome == "accept"
    assert evaluate(custom, gift(titled("Chief Overlord")), PLENTY).outcome == "hold"


def test_a_document_from_before_the_rule_holds_with_the_built_in_titles():
    doc = copy.deepcopy(default_doc())
    doc.pop(RULE)
    doc["outcomes"].pop(RULE, None)
    old = policy_from_mapping(doc)
    assert old.outcomes[RULE] == "hold"
    assert evaluate(old, gift(titled("VP Research")), PLENTY).outcome == "hold"


@pytest.mark.parametrize("titles", [[], "chief", [""], [3]])
def test_a_bad_title_list_is_refused(titles):
    doc = copy.deepcopy(default_doc())
    doc[RULE]["titles"] = titles
    with pytest.raises(PolicyError, match=RULE):
        policy_from_mapping(doc)


def test_terms_are_matched_literally():
    assert senior_title_pattern(("c.o",)).search("cxo") is None

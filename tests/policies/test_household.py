"""The household_of_senior_decision_maker rule as a decision table: a gift from the spouse,
partner or household of a senior decision-maker at a covered lab is held (when the policy
enables the rule), the relationship and the senior role both judged on the gift date."""

from __future__ import annotations

import copy
import dataclasses
from datetime import date

import pytest

from policies import RelativeFact, evaluate
from policies.document import PolicyError, policy_from_mapping
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

RULE = "household_of_senior_decision_maker"


def relative(kind="spouse_partner", *jobs, start=date(2015, 1, 1), end=None, name="Sam Senior",
             donor_id=3):
    return RelativeFact(donor_id=donor_id, name=name, kind=kind, start_date=start,
                        end_date=end, affiliations=tuple(jobs))


def related(*relatives, name="Robin Spouse", donor_id=1, own_jobs=()):
    return dataclasses.replace(person(name, *own_jobs, donor_id=donor_id),
                               relatives=tuple(relatives))


SENIOR = job(senior=True, title="CEO")


def row(id, facts, outcome, rules):
    return pytest.param(facts, outcome, set(rules), id=id)


DECISIONS = [
    row("no relatives: accepted", gift(person()), "accept", []),
    row("spouse of a current senior decision-maker: held",
        gift(related(relative("spouse_partner", SENIOR))), "hold", [RULE]),
    row("household member of one: held",
        gift(related(relative("household", SENIOR))), "hold", [RULE]),
    row("family is not a shipped kind: accepted",
        gift(related(relative("family", SENIOR))), "accept", []),
    row("a colleague neither: accepted",
        gift(related(relative("colleague", SENIOR))), "accept", []),
    row("spouse of an ordinary lab employee: accepted",
        gift(related(relative("spouse_partner", job()))), "accept", []),
    row("spouse of a senior at an organisation not covered: accepted",
        gift(related(relative("spouse_partner", job("Bakery", covered=False, senior=True)))),
        "accept", []),
    row("relationship starting after the gift: accepted",
        gift(related(relative("spouse_partner", SENIOR, start=GIFT_DAY + days(1)))),
        "accept", []),
    row("relationship starting on the gift date: held",
        gift(related(relative("spouse_partner", SENIOR, start=GIFT_DAY))), "hold", [RULE]),
    row("relationship ended the day before: accepted",
        gift(related(relative("spouse_partner", SENIOR, end=GIFT_DAY - days(1)))),
        "accept", []),
    row("relationship ending on the gift date: held",
        gift(related(relative("spouse_partner", SENIOR, end=GIFT_DAY))), "hold", [RULE]),
    row("senior role ended within the cooling-off period: held",
        gift(related(relative("spouse_partner", job(senior=True, end=GIFT_DAY - days(364))))),
        "hold", [RULE]),
    row("senior role ended past the cooling-off period: accepted",
        gift(related(relative("spouse_partner", job(senior=True, end=GIFT_DAY - days(365))))),
        "accept", []),
    row("senior role starting after the gift: accepted",
        gift(related(relative("spouse_partner", job(senior=True, start=GIFT_DAY + days(1))))),
        "accept", []),
    row("the spouse attributed a DAF grant: held",
        gift(organization("Giving Fund"), attributions=[related(relative("spouse_partner",
                                                                         SENIOR))]),
        "hold", [RULE]),
    row("an organisation's relatives are not read",
        gift(dataclasses.replace(organization(), relatives=(relative("household", SENIOR),))),
        "accept", []),
    row("the senior decision-maker's own gift is rejected by the person rule, not this one",
        gift(person("Sam Senior", SENIOR, donor_id=3)), "reject", ["senior_decision_maker"]),
]


@pytest.mark.parametrize(("facts", "outcome", "rules"), DECISIONS)
def test_decision_table(facts, outcome, rules):
    evaluation = evaluate(policy(), facts, PLENTY)
    assert evaluation.outcome == outcome
    assert {f.rule for f in evaluation.fired} == rules


def test_the_reason_names_both_people_the_relation_and_the_role():
    evaluation = evaluate(policy(), gift(related(relative("spouse_partner", SENIOR))), PLENTY)
    (finding,) = [f for f in evaluation.fired if f.rule == RULE]
    assert finding.message == (
        "From the household of a senior decision-maker at a covered lab: Robin Spouse is the "
        "spouse or partner of Sam Senior (CEO at Frontier Lab). A reviewer decides whether "
        "the money is the donor's own.")
    assert finding.figures == {"related_senior_decision_makers": [
        {"donor_id": 1, "organization": "Frontier Lab", "related_donor_id": 3,
         "relationship": "spouse_partner"}]}


def test_off_when_the_policy_does_not_enable_it():
    facts = gift(related(relative("spouse_partner", SENIOR)))
    off = policy(**{f"{RULE}.enabled": False})
    assert evaluate(off, facts, PLENTY).outcome == "accept"
    older = copy.deepcopy(default_doc())
    del older[RULE]  # a version from before the rule
    evaluation = evaluate(policy_from_mapping(older), facts, PLENTY)
    assert evaluation.outcome == "accept"
    (finding,) = [f for f in evaluation.findings if f.rule == RULE]
    assert "does not screen" in finding.message


def test_the_kinds_are_a_setting():
    facts = gift(related(relative("family", SENIOR)))
    assert evaluate(policy(**{f"{RULE}.kinds": ["family"]}), facts, PLENTY).outcome == "hold"


def test_the_outcome_is_a_setting():
    facts = gift(related(relative("spouse_partner", SENIOR)))
    strict = policy(**{f"outcomes.{RULE}": "reject"})
    assert evaluate(strict, facts, PLENTY).outcome == "reject"


@pytest.mark.parametrize("table", [{"enabled": "yes"}, {"enabled": True, "kinds": []},
                                   {"enabled": True, "kinds": ["neighbour"]}])
def test_bad_settings_do_not_load(table):
    doc = copy.deepcopy(default_doc())
    doc[RULE] = table
    with pytest.raises(PolicyError):
        policy_from_mapping(doc)

"""Decision tables for policies.evaluate: facts in, outcome and fired rules out."""

from __future__ import annotations

import json
import re
from fractions import Fraction

import pytest

from policies import Evaluation, Finding, evaluate
from policies.document import RULE_IDS
from policies.engine import combine
from tests.policies.policy_builders import (
    EMPTY_WINDOW,
    GIFT_DAY,
    LAB,
    NO_WINDOWS,
    PLENTY,
    days,
    funding,
    gift,
    job,
    lab_employee,
    lab_org,
    organization,
    person,
    policy,
    senior,
    window,
)

EVAL = "lab_evaluation_payment"
SENIOR = "senior_decision_maker"
CAP = "lab_employee_cap"
CORPORATE = "lab_corporate_money"
IN_KIND = "lab_in_kind"

DAF_SPONSOR = organization("Community Giving Fund", donor_id=70)
NON_EMPLOYEE = person("Nia Neighbour", donor_id=9)


def fired(evaluation: Evaluation) -> set[str]:
    return {f.rule for f in evaluation.fired}


def row(id, facts, money, outcome, rules, disclose=False):
    return pytest.param(facts, money, outcome, set(rules), disclose, id=id)


DECISIONS = [
    # --- ordinary money --------------------------------------------------------------
    row("individual gift accepted", gift(person()), PLENTY, "accept", []),
    row("foundation grant accepted", gift(organization(), 5_000_000), PLENTY, "accept", []),
    row("non-covered org paying for evaluations accepted",
        gift(organization("Safety Institute"), purpose="evaluation_services"), PLENTY,
        "accept", []),
    # --- rule 1: lab payment for evaluations ------------------------------------------
    row("lab pays for evaluation services -> reject",
        gift(lab_org(), 2_500_000, purpose="evaluation_services"), PLENTY, "reject", [EVAL]),
    row("lab affiliate pays for evaluation services -> reject",
        gift(lab_org("Frontier Lab Foundation"), purpose="evaluation_services"), PLENTY,
        "reject", [EVAL]),
    row("lab paying through an attribution for evaluations -> reject",
        gift(organization("Billing Agent"), purpose="evaluation_services",
             attributions=[lab_org()]), PLENTY, "reject", [EVAL]),
    # --- rule 4: other lab money is held ----------------------------------------------
    row("lab corporate general gift held", gift(lab_org(), 1_000_000), PLENTY, "hold",
        [CORPORATE]),
    row("lab corporate restricted gift held",
        gift(lab_org(), purpose="restricted"), PLENTY, "hold", [CORPORATE]),
    row("lab affiliate corporate gift held",
        gift(lab_org("Frontier Lab Foundation")), PLENTY, "hold", [CORPORATE]),
    row("employer matching gift from lab held",
        gift(lab_org(), 5_000, matching=True, attributions=[lab_org()]), PLENTY, "hold",
        [CORPORATE]),
    row("matching gift from a non-covered employer accepted",
        gift(organization("Bakery Inc"), 5_000, matching=True,
             attributions=[organization("Bakery Inc")]), PLENTY, "accept", []),
    # --- rule 3: in-kind is disclosed, never funding ------------------------------------
    row("in-kind from lab accepted and disclosed",
        gift(lab_org(), 500_000, kind="in_kind"), PLENTY, "accept", [IN_KIND], True),
    row("in-kind evaluation model access from lab accepted and disclosed, not rejected",
        gift(lab_org(), 500_000, kind="in_kind", purpose="evaluation_services"), PLENTY,
        "accept", [IN_KIND], True),
    row("in-kind from lab with no funding at all still accepted",
        gift(lab_org(), 500_000, kind="in_kind"), NO_WINDOWS, "accept", [IN_KIND], True),
    row("in-kind from a lab employee is not lab-employee money",
        gift(lab_employee(), 500_000, kind="in_kind"), NO_WINDOWS, "accept", []),
    # --- rule 2a: senior decision-makers ----------------------------------------------
    row("senior decision-maker in office -> reject", gift(senior()), PLENTY, "reject",
        [SENIOR]),
    row("senior ended 364 days before gift -> reject",
        gift(senior(end=GIFT_DAY - days(364))), PLENTY, "reject", [SENIOR]),
    row("senior ended on the gift date -> reject",
        gift(senior(end=GIFT_DAY)), PLENTY, "reject", [SENIOR]),
    row("senior ended exactly 365 days before -> no longer senior, accept",
        gift(senior(end=GIFT_DAY - days(365))), PLENTY, "accept", []),
    row("senior ended 365 days before, even with no funding -> accept",
        gift(senior(end=GIFT_DAY - days(365))), NO_WINDOWS, "accept", []),
    row("senior role starting the day after the gift is not counted",
        gift(senior(start=GIFT_DAY + days(1))), PLENTY, "accept", []),
    row("senior role starting on the gift date counts",
        gift(senior(start=GIFT_DAY)), PLENTY, "reject", [SENIOR]),
    row("senior at a non-covered organisation accepted",
        gift(person("Olu Outsider", job("Bakery Inc", covered=False, senior=True))), PLENTY,
        "accept", []),
    row("lab board member flagged senior -> reject",
        gift(person("Bo Board", job(kind="board_member", senior=True))), PLENTY, "reject",
        [SENIOR]),
    row("DAF grant advised by a senior decision-maker -> reject",
        gift(DAF_SPONSOR, 2_000_000, attributions=[senior("Ada Advisor")]), PLENTY, "reject",
        [SENIOR]),
    row("DAF grant advised by an ordinary person accepted",
        gift(DAF_SPONSOR, 2_000_000, attributions=[person("Ada Advisor")]), PLENTY, "accept",
        []),
    # --- rule 2b: lab-employee cap, strictly below 50% --------------------------------
    row("lab employee under the cap accepted (5000/11000)",
        gift(lab_employee(), 1_000), funding(window(10_000, 4_000)), "accept", []),
    row("lab employee just below the cap accepted (5999/11999)",
        gift(lab_employee(), 1_999), funding(window(10_000, 4_000)), "accept", []),
    row("lab employee exactly at the cap rejected (6000/12000)",
        gift(lab_employee(), 2_000), funding(window(10_000, 4_000)), "reject", [CAP]),
    row("lab employee over the cap rejected",
        gift(lab_employee(), 5_000), funding(window(10_000, 4_000)), "reject", [CAP]),
    row("former employee 364 days out still counts toward the cap",
        gift(person("Fay Former", job(end=GIFT_DAY - days(364))), 2_000),
        funding(window(10_000, 4_000)), "reject", [CAP]),
    row("former employee 365 days out no longer counts",
        gift(person("Fay Former", job(end=GIFT_DAY - days(365))), 2_000),
        funding(window(10_000, 4_000)), "accept", []),
    row("employee of a non-covered org ignores the cap",
        gift(person("Olu Outsider", job("Bakery Inc", covered=False)), 2_000),
        funding(window(10_000, 4_000)), "accept", []),
    row("cap fine on gift date, broken in a later window -> reject",
        gift(lab_employee(), 2_000),
        funding(window(100_000, 0), window(10_000, 4_000, end=GIFT_DAY + days(30))),
        "reject", [CAP]),
    row("DAF grant advised by a lab employee counts toward the cap",
        gift(DAF_SPONSOR, 2_000, attributions=[lab_employee("Ada Advisor")]),
        funding(window(10_000, 4_000)), "reject", [CAP]),
    # --- joint gifts --------------------------------------------------------------------
    row("joint gift 50/50 with lab employee, plenty of room",
        gift(NON_EMPLOYEE, 10_001,
             attributions=[lab_employee(fraction=Fraction(1, 2)),
                           person("Nia Neighbour", donor_id=9, fraction=Fraction(1, 2))]),
        funding(window(20_000, 5_000)), "accept", []),
    row("joint gift: lab half rounded up lands exactly on the cap (2/4)",
        gift(NON_EMPLOYEE, 3,
             attributions=[lab_employee(fraction=Fraction(1, 2)),
                           person("Nia Neighbour", donor_id=9, fraction=Fraction(1, 2))]),
        funding(window(1, 0)), "reject", [CAP]),
    # --- empty funding ------------------------------------------------------------------
    row("no windows: lab-employee gift is 100% -> reject",
        gift(lab_employee(), 100), NO_WINDOWS, "reject", [CAP]),
    row("empty 0/0 window: lab-employee gift is 100% -> reject",
        gift(lab_employee(), 100), EMPTY_WINDOW, "reject", [CAP]),
    row("no windows: ordinary gift accepted", gift(person(), 100), NO_WINDOWS, "accept", []),
    row("empty 0/0 window: ordinary gift accepted",
        gift(person(), 100), EMPTY_WINDOW, "accept", []),
    row("no windows: joint gift one third lab employee accepted (34/100)",
        gift(NON_EMPLOYEE, 100,
             attributions=[lab_employee(fraction=Fraction(1, 3)),
                           person("Nia Neighbour", donor_id=9, fraction=Fraction(2, 3))]),
        NO_WINDOWS, "accept", []),
    # --- combinations: reject beats hold beats accept -------------------------------------
    row("lab corporate gift attributed to its senior executive: reject beats hold",
        gift(lab_org(), attributions=[senior()]), PLENTY, "reject", [CORPORATE, SENIOR]),
    row("lab evaluation payment attributed to its senior executive: both reject",
        gift(lab_org(), purpose="evaluation_services", attributions=[senior()]), PLENTY,
        "reject", [EVAL, SENIOR]),
    row("senior lab employee over the cap: both reject",
        gift(senior(), 2_000), funding(window(10_000, 4_000)), "reject", [SENIOR, CAP]),
    row("lab corporate gift attributed to a lab employee over the cap: reject beats hold",
        gift(lab_org(), 2_000, attributions=[lab_employee()]), funding(window(10_000, 4_000)),
        "reject", [CORPORATE, CAP]),
]


@pytest.mark.parametrize(("facts", "money", "outcome", "rules", "disclose"), DECISIONS)
def test_decision_table(facts, money, outcome, rules, disclose):
    evaluation = evaluate(policy(), facts, money)

    assert evaluation.outcome == outcome
    assert fired(evaluation) == rules
    assert evaluation.disclose is disclose


@pytest.mark.parametrize(("facts", "money", "outcome", "rules", "disclose"), DECISIONS)
def test_every_evaluation_explains_every_rule(facts, money, outcome, rules, disclose):
    evaluation = evaluate(policy(), facts, money)
    reasons = evaluation.reasons()

    assert sorted(r["rule"] for r in reasons) == sorted(RULE_IDS)
    for reason in reasons:
        assert set(reason) == {"rule", "outcome", "fired", "message"}
        assert reason["outcome"] in ("accept", "hold", "reject")
        assert isinstance(reason["fired"], bool)
        assert isinstance(reason["message"], str) and reason["message"].strip()
        if not reason["fired"]:
            assert reason["outcome"] == "accept"
    # Fired rules come first.
    flags = [r["fired"] for r in reasons]
    assert flags == sorted(flags, reverse=True)
    assert {r["rule"] for r in reasons if r["fired"]} == rules
    json.dumps(reasons)  # stored as JSON on the decision


@pytest.mark.parametrize(("facts", "money", "outcome", "rules", "disclose"), DECISIONS)
def test_every_evaluation_carries_version_and_figures(facts, money, outcome, rules, disclose):
    chosen = policy(version="test-7")
    evaluation = evaluate(chosen, facts, money)

    assert evaluation.policy_version == "test-7"
    figures = evaluation.figures
    for key in ("share_before", "share_after"):
        assert isinstance(figures[key], str)
        assert re.fullmatch(r"[01]\.\d{6}", figures[key]), figures[key]
    assert type(figures["headroom_minor"]) is int and figures["headroom_minor"] >= 0
    assert type(figures["gift_lab_employee_minor"]) is int
    assert figures["windows_checked"] == max(1, len(money.windows))
    assert figures["cap"] == "0.50"
    assert figures["window_days"] == 365
    assert figures["cooling_off_days"] == 365
    assert figures["currency"] == facts.currency
    assert figures["gift_amount_minor"] == facts.amount_minor
    json.dumps(figures)  # JSON-ready: no Fractions, no dates


def test_evaluate_is_pure():
    facts = gift(lab_employee(), 2_000)
    money = funding(window(10_000, 4_000))
    assert evaluate(policy(), facts, money) == evaluate(policy(), facts, money)


def test_reasons_order_fired_by_severity_then_the_rest():
    evaluation = evaluate(policy(), gift(lab_org(), attributions=[senior()]), PLENTY)
    reasons = evaluation.reasons()
    assert [(r["rule"], r["outcome"]) for r in reasons[:2]] == [
        (SENIOR, "reject"), (CORPORATE, "hold"),
    ]
    assert not any(r["fired"] for r in reasons[2:])


# --- figures and messages of the cap rule ------------------------------------------------


def test_cap_figures_exactly_at_cap():
    evaluation = evaluate(policy(), gift(lab_employee(), 2_000), funding(window(10_000, 4_000)))
    figures = evaluation.figures
    assert figures["share_before"] == "0.400000"
    assert figures["share_after"] == "0.500000"
    assert figures["headroom_minor"] == 1_999
    assert figures["gift_lab_employee_minor"] == 2_000
    assert figures["breaking_window_end"] == GIFT_DAY.isoformat()
    assert figures["breaking_share"] == "0.500000"
    (cap,) = [f for f in evaluation.findings if f.rule == CAP]
    assert "on the gift date" in cap.message
    assert "50%" in cap.message


def test_cap_figures_when_accepted():
    evaluation = evaluate(policy(), gift(lab_employee(), 1_000), funding(window(10_000, 4_000)))
    figures = evaluation.figures
    assert figures["share_before"] == "0.400000"
    assert figures["share_after"] == "0.454545"  # 5000/11000, truncated
    assert figures["headroom_minor"] == 1_999
    assert "breaking_window_end" not in figures
    (cap,) = [f for f in evaluation.findings if f.rule == CAP]
    assert not cap.fired
    assert "45.4%" in cap.message  # truncated, not rounded to 45.5%


def test_cap_broken_only_in_later_window_names_that_date():
    later = GIFT_DAY + days(30)
    evaluation = evaluate(
        policy(),
        gift(lab_employee(), 2_000),
        funding(window(100_000, 0), window(10_000, 4_000, end=later)),
    )
    assert evaluation.outcome == "reject"
    (cap,) = [f for f in evaluation.findings if f.rule == CAP]
    assert later.isoformat() in cap.message
    assert "on the gift date" not in cap.message
    assert evaluation.figures["breaking_window_end"] == later.isoformat()
    # share_before/after describe the gift-date window, which was fine.
    assert evaluation.figures["share_before"] == "0.000000"
    assert evaluation.figures["share_after"] == "0.019607"  # 2000/102000
    # headroom is the tightest window's.
    assert evaluation.figures["headroom_minor"] == 1_999
    assert evaluation.figures["windows_checked"] == 2


def test_in_kind_is_not_counted_as_funding():
    evaluation = evaluate(policy(), gift(lab_org(), 500_000, kind="in_kind"),
                          funding(window(10_000, 4_000)))
    assert evaluation.figures["share_before"] == evaluation.figures["share_after"] == "0.400000"
    assert evaluation.figures["gift_lab_employee_minor"] == 0


def test_joint_gift_lab_part_is_rounded_up():
    facts = gift(NON_EMPLOYEE, 10_001, attributions=[
        lab_employee(fraction=Fraction(1, 2)),
        person("Nia Neighbour", donor_id=9, fraction=Fraction(1, 2)),
    ])
    evaluation = evaluate(policy(), facts, funding(window(20_000, 5_000)))
    assert evaluation.figures["gift_lab_employee_minor"] == 5_001  # ceil(10001 / 2)
    assert evaluation.figures["share_after"] == "0.333355"  # 10001/30001, truncated


def test_matching_gift_message_says_so():
    evaluation = evaluate(policy(), gift(lab_org(), matching=True), PLENTY)
    (corporate,) = [f for f in evaluation.findings if f.rule == CORPORATE]
    assert corporate.message.startswith("An employer matching gift from a covered lab")
    assert LAB in corporate.message


def test_senior_message_names_person_role_lab_and_end_date():
    ended = GIFT_DAY - days(364)
    evaluation = evaluate(policy(), gift(senior("Sam Senior", end=ended)), PLENTY)
    (finding,) = evaluation.fired
    assert "Sam Senior" in finding.message
    assert "Chief Scientist" in finding.message
    assert LAB in finding.message
    assert ended.isoformat() in finding.message
    assert "365-day cooling-off" in finding.message


# --- every window given is checked ---------------------------------------------------------

FINE = 1_000_000  # lab 0 of 1,000,000: a 2,000 lab gift is nowhere near the cap


@pytest.mark.parametrize("breaking", range(4), ids=lambda i: f"window {i} of 4 breaks")
def test_each_window_is_checked(breaking):
    windows = [window(FINE, 0, end=GIFT_DAY + days(10 * i)) for i in range(4)]
    windows[breaking] = window(10_000, 4_000, end=GIFT_DAY + days(10 * breaking))
    evaluation = evaluate(policy(), gift(lab_employee(), 2_000), funding(*windows))

    assert evaluation.outcome == "reject"
    assert fired(evaluation) == {CAP}
    assert evaluation.figures["windows_checked"] == 4
    assert evaluation.figures["breaking_window_end"] == windows[breaking].end.isoformat()
    assert evaluation.figures["headroom_minor"] == 1_999


def test_all_windows_fine_accepts_and_counts_them():
    windows = [window(FINE, 0, end=GIFT_DAY + days(10 * i)) for i in range(4)]
    evaluation = evaluate(policy(), gift(lab_employee(), 2_000), funding(*windows))
    assert evaluation.outcome == "accept"
    assert evaluation.figures["windows_checked"] == 4
    (cap,) = [f for f in evaluation.findings if f.rule == CAP]
    assert "(4 checked)" in cap.message


def test_worst_broken_window_is_reported():
    windows = [
        window(10_000, 4_000),  # 6000/12000 = 50%
        window(10_000, 6_000, end=GIFT_DAY + days(5)),  # 8000/12000 = 66.6%
        window(10_000, 5_000, end=GIFT_DAY + days(9)),  # 7000/12000 = 58.3%
    ]
    evaluation = evaluate(policy(), gift(lab_employee(), 2_000), funding(*windows))
    assert evaluation.figures["breaking_window_end"] == (GIFT_DAY + days(5)).isoformat()
    assert evaluation.figures["breaking_share"] == "0.666666"
    assert evaluation.figures["headroom_minor"] == 0


def test_later_window_already_in_breach_rejects_lab_money_but_not_other_money():
    money = funding(window(FINE, 0), window(10_000, 5_000, end=GIFT_DAY + days(3)))
    assert evaluate(policy(), gift(lab_employee(), 1), money).outcome == "reject"
    assert evaluate(policy(), gift(person(), 1), money).outcome == "accept"


# --- the policy's numbers and outcomes are settings -----------------------------------------


@pytest.mark.parametrize(
    ("changes", "facts", "money", "outcome"),
    [
        pytest.param({"outcomes.lab_corporate_money": "reject"}, gift(lab_org()), PLENTY,
                     "reject", id="corporate money rejected when the document says so"),
        pytest.param({"outcomes.lab_corporate_money": "accept"}, gift(lab_org()), PLENTY,
                     "accept", id="corporate money accepted when the document says so"),
        pytest.param({"outcomes.lab_evaluation_payment": "hold"},
                     gift(lab_org(), purpose="evaluation_services"), PLENTY, "hold",
                     id="evaluation payment held when the document says so"),
        pytest.param({"outcomes.lab_in_kind": "hold"}, gift(lab_org(), kind="in_kind"),
                     PLENTY, "hold", id="in-kind held when the document says so"),
        pytest.param({"outcomes.senior_decision_maker": "hold"}, gift(senior()), PLENTY,
                     "hold", id="senior held when the document says so"),
        pytest.param({"outcomes.lab_employee_cap": "hold"}, gift(lab_employee(), 2_000),
                     funding(window(10_000, 4_000)), "hold", id="cap breach held"),
        pytest.param({"lab_employee_share.cap": "0.25", "lab_employee_share.warning": "0.2"},
                     gift(lab_employee(), 1_000), funding(window(10_000, 2_000)), "reject",
                     id="cap 25%: 3000/11000 rejected"),
        pytest.param({"lab_employee_share.cap": "0.9"},
                     gift(lab_employee(), 5_000), funding(window(10_000, 4_000)), "accept",
                     id="cap 90%: 9000/15000 accepted"),
        pytest.param({"affiliation.cooling_off_days": 30},
                     gift(senior(end=GIFT_DAY - days(30))), PLENTY, "accept",
                     id="cooling-off 30 days: senior who left 30 days ago accepted"),
        pytest.param({"affiliation.cooling_off_days": 30},
                     gift(senior(end=GIFT_DAY - days(29))), PLENTY, "reject",
                     id="cooling-off 30 days: senior who left 29 days ago rejected"),
        pytest.param({"affiliation.cooling_off_days": 730},
                     gift(senior(end=GIFT_DAY - days(500))), PLENTY, "reject",
                     id="cooling-off 730 days: senior who left 500 days ago rejected"),
    ],
)
def test_outcomes_and_numbers_come_from_the_document(changes, facts, money, outcome):
    assert evaluate(policy(**changes), facts, money).outcome == outcome


def test_in_kind_held_by_document_is_still_disclosed():
    evaluation = evaluate(policy(**{"outcomes.lab_in_kind": "hold"}),
                          gift(lab_org(), kind="in_kind"), PLENTY)
    assert evaluation.disclose is True


def test_figures_report_the_documents_numbers():
    chosen = policy(**{
        "lab_employee_share.cap": "0.25",
        "lab_employee_share.warning": "0.2",
        "lab_employee_share.window_days": 90,
        "affiliation.cooling_off_days": 30,
    })
    figures = evaluate(chosen, gift(person()), PLENTY).figures
    assert figures["cap"] == "0.25"
    assert figures["warning"] == "0.2"
    assert figures["window_days"] == 90
    assert figures["cooling_off_days"] == 30


def test_cap_message_uses_the_documents_cap():
    chosen = policy(**{"lab_employee_share.cap": "0.25", "lab_employee_share.warning": "0.2"})
    evaluation = evaluate(chosen, gift(lab_employee(), 1_000), funding(window(10_000, 2_000)))
    (cap,) = evaluation.fired
    assert "below 25%" in cap.message
    assert "27.2%" in cap.message  # 3000/11000 = 27.27..%, truncated


# --- rules that can never fire together ------------------------------------------------------


@pytest.mark.parametrize("kind", ["cash", "in_kind"])
@pytest.mark.parametrize("purpose", ["general", "restricted", "evaluation_services"])
@pytest.mark.parametrize("matching", [False, True], ids=["direct", "matching"])
def test_every_lab_org_gift_fires_exactly_one_lab_org_rule(kind, purpose, matching):
    evaluation = evaluate(
        policy(), gift(lab_org(), kind=kind, purpose=purpose, matching=matching), PLENTY
    )
    lab_rules = fired(evaluation) & {EVAL, CORPORATE, IN_KIND}
    assert len(lab_rules) == 1
    expected = (
        IN_KIND if kind == "in_kind"
        else EVAL if purpose == "evaluation_services"
        else CORPORATE
    )
    assert lab_rules == {expected}


# --- combine() on its own ------------------------------------------------------------------


def finding(outcome: str, fired: bool = True) -> Finding:
    return Finding(rule=f"r-{outcome}-{fired}", outcome=outcome, fired=fired, message="m")


@pytest.mark.parametrize(
    ("findings", "expected"),
    [
        pytest.param((), "accept", id="nothing -> accept"),
        pytest.param((finding("accept"),), "accept", id="fired accept -> accept"),
        pytest.param((finding("hold"), finding("accept")), "hold", id="hold beats accept"),
        pytest.param((finding("accept"), finding("reject")), "reject",
                     id="reject beats accept"),
        pytest.param((finding("hold"), finding("reject"), finding("accept")), "reject",
                     id="reject beats hold"),
        pytest.param((finding("reject", fired=False), finding("hold")), "hold",
                     id="unfired reject is ignored"),
        pytest.param((finding("hold", fired=False),), "accept", id="unfired hold is ignored"),
    ],
)
def test_combine_precedence(findings, expected):
    assert combine(findings) == expected

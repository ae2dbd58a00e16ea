"""Identity matching, pure: normalisation, blocking keys, name similarity, and the rule
possible_match as a decision table over its thresholds (no database)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from policies import MatchFact, PolicyError, evaluate
from policies.document import policy_from_mapping
from policies.identity import (
    CANDIDATE_FLOOR,
    Identity,
    Signals,
    SignalsAgainst,
    address_key,
    block_keys,
    email_key,
    initial_keys,
    initial_prefixes,
    match_score,
    name_key,
    name_similarity,
    organization_key,
    phone_key,
    same_initial,
    signals,
)
from tests.policies.policy_builders import (
    GIFT_DAY,
    PLENTY,
    days,
    default_doc,
    gift,
    job,
    person,
    policy,
)

RULE = "possible_match"


# --- normalisation ---------------------------------------------------------------------------

@pytest.mark.parametrize(("a", "b"), [
    ("  Morgan.Chen@Example.ORG ", "morgan.chen@example.org"),
    ("MORGAN@EXAMPLE.ORG", "morgan@example.org"),
])
def test_email_key_folds_case_and_surrounding_blanks(a, b):
    assert email_key(a) == email_key(b)


def test_email_key_of_nothing_is_none():
    assert email_key(None) is None and email_key("   ") is None


@pytest.mark.parametrize(("a", "b"), [
    ("Morgan Chen", "Chen, Morgan"),
    ("José Núñez", "jose nunez"),
    ("Dr. Morgan Chen Jr.", "morgan chen"),
    ("Zoë O'Brien", "zoe o brien"),
])
def test_name_key_folds_order_accents_titles_and_punctuation(a, b):
    assert name_key(a) == name_key(b)


@pytest.mark.parametrize(("variant",), [("Morgen Chen",), ("Chen Morgan",), ("Chen, Morgan",),
                                         ("Morgan Chan",), ("Dr Morgan Chen",),
                                         ("Morgan Q. Chen",)])
def test_variants_share_a_blocking_key(variant):
    assert set(block_keys("Morgan Chen")) & set(block_keys(variant)) - {None}


def test_an_initial_alone_is_not_a_name_key():
    """The plain keys keep an initial apart (a common name's candidates stay few)..."""
    assert not set(block_keys("Morgan Chen")) & set(block_keys("M. Chen")) - {None}


@pytest.mark.parametrize("initialled", ["M. Chen", "Chen, M.", "Dr M Chen"])
@pytest.mark.parametrize("full", ["Morgan Chen", "Chen, Morgan", "Morgan Q. Chen"])
def test_an_initial_meets_the_full_name_by_its_initial_keys(initialled, full):
    """...the one-letter keys bring them together, both ways: the full name's one-letter
    keys include a key of the initialled name, and a key of the full name begins with the
    initialled name's prefix."""
    assert set(initial_keys(full)) & set(block_keys(initialled))
    assert any(k.startswith(p) for p in initial_prefixes(initialled)
               for k in block_keys(full) if k)


def test_a_full_name_searches_no_prefix():
    assert initial_prefixes("Morgan Chen") == ()


@pytest.mark.parametrize(("a", "b", "agree"), [
    ("M. Chen", "Morgan Chen", True),
    ("Chen, M.", "Morgan Chen", True),
    ("Morgan Chen", "M Chen", True),
    ("M. Chen", "Morgan Lee Chen", True),
    ("M. Chen", "Alex Chen", False),  # another initial
    ("M. Chen", "Morgan Stone", False),  # another surname
    ("Morgan Chen", "Morgan Chen", False),  # no initial: name_similarity says it
    ("M. Chen", "M. Chen", False),
    ("M. J. Chen", "Morgan Chen", False),  # two initials: too little to agree on
])
def test_same_initial(a, b, agree):
    assert same_initial(a, b) is agree


def test_common_names_split_by_the_second_letter():
    assert not set(block_keys("James Smith")) & set(block_keys("Joan Smith")) - {None}


def test_unrelated_names_share_no_blocking_key():
    assert not set(block_keys("Morgan Chen")) & set(block_keys("Alice Wong")) - {None}


@pytest.mark.parametrize(("a", "b"), [
    ("+1 (415) 555-0100", "415.555.0100"),
    ("001 415 555 0100", "4155550100"),
])
def test_phone_key_is_the_last_ten_digits(a, b):
    assert phone_key(a) == phone_key(b)


def test_a_short_number_names_no_phone():
    assert phone_key("555-01") is None


def test_address_key_ignores_order_case_and_commas():
    assert address_key("12 Main St, Springfield") == address_key("springfield 12 main st")


@pytest.mark.parametrize(("a", "b"), [
    ("Halcyon Labs, Inc.", "Halcyon Labs"),
    ("halcyon labs inc", "HALCYON LABS"),
    ("The Halcyon Labs Ltd", "Halcyon Labs"),
    ("Hälcyon Labs LLC", "Halcyon Labs"),
])
def test_organization_key_strips_legal_forms_and_punctuation(a, b):
    assert organization_key(a) == organization_key(b)


def test_different_organisations_keep_different_keys():
    assert organization_key("Halcyon Labs") != organization_key("Halcyon Health")


@pytest.mark.parametrize(("a", "b", "low", "high"), [
    ("Morgan Chen", "Morgan Chen", "1", "1"),
    ("Morgan Chen", "Chen, Morgan", "1", "1"),
    ("Morgan Chen", "Morgen Chen", "0.95", "0.97"),
    ("John Smith", "Jane Smith", "0.87", "0.89"),
    ("Alice Wong", "Bob Wong", "0", "0.75"),
    ("Former employee 364", "Former employee 365", "0", "0"),
    ("Donor 7", "Donor 7", "1", "1"),
    # A digit typed on one name only does not slip past the match.
    ("Morgan Chen", "Morgan Chen 2", "1", "1"),
    ("Morgan Chen 3", "Chen Morgan", "1", "1"),
    ("Morgan Chen", "2", "0", "0"),
])
def test_name_similarity(a, b, low, high):
    assert Decimal(low) <= name_similarity(a, b) <= Decimal(high)


def test_signals_compare_each_key():
    sig = signals(Identity("Morgan Chen", "M@x.org", "+1 415 555 0100", "1 Main St"),
                  Identity("M. Chen", "m@X.org ", "4155550100", "1 main st"))
    assert (sig.same_email, sig.same_phone, sig.same_address, sig.same_initial) == (
        True, True, True, True)


@pytest.mark.parametrize("other", [
    Identity("M. Chen", "m@X.org ", "4155550100", "1 main st"),
    Identity("Morgan Chen"),
    Identity("Alex Stone", "a@y.org", "4155550199", "2 Oak Ave"),
    Identity("Morgan Chen", None, "415 555 0100", None),
])
@pytest.mark.parametrize("me", [
    Identity("Morgan Chen", "M@x.org", "+1 415 555 0100", "1 Main St"),
    Identity("M Chen"),
])
def test_signals_against_one_record_are_its_signals(me, other):
    assert SignalsAgainst(me)(other.name, other.email, other.phone, other.address) == \
        signals(me, other)


# --- score -----------------------------------------------------------------------------------

BONUS = {"phone_bonus": Decimal("0.05"), "address_bonus": Decimal("0.05")}


@pytest.mark.parametrize(("sig", "score"), [
    (Signals(Decimal("0.5"), same_email=True), "1"),
    (Signals(Decimal("0.90")), "0.90"),
    (Signals(Decimal("0.90"), same_phone=True), "0.95"),
    (Signals(Decimal("0.90"), same_phone=True, same_address=True), "1.00"),
    (Signals(Decimal("0.99"), same_phone=True, same_address=True), "1"),
])
def test_match_score(sig, score):
    assert match_score(sig, **BONUS) == Decimal(score)


@pytest.mark.parametrize(("sig", "initial_score", "score"), [
    (Signals(Decimal("0.85"), same_initial=True), "0.87", "0.87"),
    (Signals(Decimal("0.85"), same_initial=True, same_phone=True), "0.87", "0.92"),
    (Signals(Decimal("0.91"), same_initial=True), "0.87", "0.91"),  # never lowers it
    (Signals(Decimal("0.85"), same_phone=True), "0.87", "0.90"),  # no initial agreeing
    (Signals(Decimal("0.85"), same_initial=True, same_phone=True), None, "0.90"),  # no weight
])
def test_match_score_of_an_initial(sig, initial_score, score):
    weight = Decimal(initial_score) if initial_score else None
    assert match_score(sig, **BONUS, initial_score=weight) == Decimal(score)


# --- the rule: a decision table --------------------------------------------------------------

LAB_JOB = job()


def match(similarity="1", *, record="donor", record_id=9, jobs=(LAB_JOB,), **flags) -> MatchFact:
    return MatchFact(record=record, record_id=record_id, name="Morgan Chen",
                     name_similarity=Decimal(similarity), affiliations=tuple(jobs), **flags)


def payer(*matches: MatchFact):
    return dataclasses.replace(person("Morgan Chen", donor_id=1), possible_matches=matches)


@pytest.mark.parametrize(("matches", "outcome"), [
    pytest.param((), "accept", id="no candidate"),
    pytest.param((match("1"),), "hold", id="same name, lab employee"),
    pytest.param((match("0.92"),), "hold", id="at the threshold"),
    pytest.param((match("0.9199"),), "accept", id="just below the threshold"),
    pytest.param((match("0.88", same_phone=True),), "hold", id="the phone lifts it"),
    pytest.param((match("0.86", same_phone=True),), "accept", id="phone bonus not enough"),
    pytest.param((match("0.83", same_phone=True, same_address=True),), "hold",
                 id="phone and address lift it"),
    pytest.param((match("0.83", same_address=True),), "accept", id="address alone not enough"),
    pytest.param((match("0.5", same_email=True),), "hold", id="same e-mail"),
    pytest.param((match("1", different=True),), "accept", id="resolved as different"),
    pytest.param((match("1", record="roster"),), "hold", id="roster entry"),
    pytest.param((match("1", jobs=(job(covered=False),)),), "accept", id="not a covered lab"),
    pytest.param((match("1", jobs=(job(start=GIFT_DAY + days(1)),)),), "accept",
                 id="role starts after the gift"),
    pytest.param((match("1", jobs=(job(end=GIFT_DAY - days(100)),)),), "hold",
                 id="role ended within the cooling-off"),
    pytest.param((match("1", jobs=(job(end=GIFT_DAY - days(400)),)),), "accept",
                 id="role ended before the cooling-off"),
    pytest.param((match("1", jobs=()),), "accept", id="no affiliation"),
    pytest.param((match("1", record_id=1),), "accept", id="the donor itself"),
    # "M. Chen" and "Morgan Chen" (name similarity 0.909; "J Smith" and "James Smith" 0.848):
    # the surname and the initial agreeing score initial_score (0.87), the threshold only
    # with supporting evidence.
    pytest.param((match("0.848", same_initial=True, same_phone=True),), "hold",
                 id="initial agrees, same phone"),
    pytest.param((match("0.848", same_initial=True, same_address=True),), "hold",
                 id="initial agrees, same address"),
    pytest.param((match("0.848", same_initial=True),), "accept",
                 id="initial agrees, nothing else"),
    pytest.param((match("0.909", same_initial=True),), "accept",
                 id="initial agrees, alike names, nothing else"),
    pytest.param((match("0.848", same_phone=True),), "accept",
                 id="initial differs, same phone"),
    pytest.param((match("0.848", same_initial=True, same_phone=True, different=True),),
                 "accept", id="initial agrees, resolved as different"),
])
def test_possible_match_decision_table(matches, outcome):
    evaluation = evaluate(policy(), gift(payer(*matches)), PLENTY)
    finding = next(f for f in evaluation.findings if f.rule == RULE)
    assert evaluation.outcome == outcome
    assert finding.fired == (outcome == "hold")


def test_an_attributed_person_is_matched_too():
    facts = gift(person("Fund Advisor", donor_id=5),
                 attributions=[payer(match("1"))])
    assert evaluate(policy(), facts, PLENTY).outcome == "hold"


def test_the_decision_names_the_record_and_the_score():
    evaluation = evaluate(policy(), gift(payer(match("0.96", record_id=42))), PLENTY)
    finding = next(f for f in evaluation.fired if f.rule == RULE)
    assert "donor 42 Morgan Chen" in finding.message and "score 0.96" in finding.message
    [figure] = evaluation.figures["possible_matches"]
    assert figure == {"donor_id": 1, "record": "donor", "record_id": 42, "name": "Morgan Chen",
                      "score": "0.96", "threshold": "0.92", "same_email": False,
                      "same_phone": False, "same_address": False, "labs": ["Frontier Lab"]}


def test_an_initial_match_says_why():
    facts = gift(payer(match("0.848", record_id=42, same_initial=True, same_address=True)))
    evaluation = evaluate(policy(), facts, PLENTY)
    finding = next(f for f in evaluation.fired if f.rule == RULE)
    assert ("score 0.92: the surname and the initial of the given name agree, and the same "
            "postal address") in finding.message
    [figure] = evaluation.figures["possible_matches"]
    assert figure["same_initial"] is True and figure["score"] == "0.92"


def test_the_initial_score_comes_from_the_policy():
    facts = gift(payer(match("0.848", same_initial=True, same_phone=True)))
    doc = default_doc()
    del doc["possible_match"]["initial_score"]
    assert evaluate(policy_from_mapping(doc), facts, PLENTY).outcome == "accept"
    assert evaluate(policy(), facts, PLENTY).outcome == "hold"
    lower = policy(**{"possible_match.initial_score": "0.86"})
    assert evaluate(lower, facts, PLENTY).outcome == "accept"


def test_the_threshold_comes_from_the_policy():
    strict = policy(**{"possible_match.threshold": "0.97"})
    assert evaluate(strict, gift(payer(match("0.96"))), PLENTY).outcome == "accept"
    assert evaluate(policy(), gift(payer(match("0.96"))), PLENTY).outcome == "hold"


def test_the_outcome_comes_from_the_policy():
    rejecting = policy(**{"outcomes.possible_match": "reject"})
    assert evaluate(rejecting, gift(payer(match("1"))), PLENTY).outcome == "reject"


def test_a_document_without_the_table_screens_with_the_shipped_values():
    doc_policy = policy()
    doc = default_doc()
    del doc["possible_match"]
    shipped = dict(doc_policy.settings[RULE])
    # Came after the rule: a document without it gives an initial no weight of its own.
    del shipped["initial_score"]
    del shipped["max_listed"]  # came after it too: such a document lists every match
    assert policy_from_mapping(doc).settings[RULE] == shipped


# --- how many matches a decision lists (possible_match.max_listed) --------------------------

def namesakes(count: int, *, first_id: int = 100, similarity: str = "1") -> list[MatchFact]:
    return [match(similarity, record_id=first_id + i) for i in range(count)]


def listing(limit, matches):
    """(outcome, listed record ids, the count of the others or None, the message)."""
    doc = default_doc()
    if limit is None:
        del doc["possible_match"]["max_listed"]
    else:
        doc["possible_match"]["max_listed"] = limit
    evaluation = evaluate(policy_from_mapping(doc), gift(payer(*matches)), PLENTY)
    finding = next(f for f in evaluation.findings if f.rule == RULE)
    figures = evaluation.figures
    return (evaluation.outcome,
            [m["record_id"] for m in figures.get("possible_matches", [])],
            figures.get("more_possible_matches"), finding.message)


@pytest.mark.parametrize(("limit", "count", "listed", "more"), [
    pytest.param(3, 2, 2, None, id="below the limit"),
    pytest.param(3, 3, 3, None, id="at the limit"),
    pytest.param(3, 4, 3, 1, id="one above the limit"),
    pytest.param(3, 8, 3, 5, id="above the limit"),
    pytest.param(None, 25, 25, None, id="version without the key: all listed"),
])
def test_a_decision_lists_at_most_max_listed(limit, count, listed, more):
    outcome, ids, counted, message = listing(limit, namesakes(count))
    assert outcome == "hold"
    assert ids == [100 + i for i in range(listed)]  # equal scores: by record id
    assert counted == more
    assert message.count("is probably donor") == listed
    if more is None:
        assert "more possible match" not in message
    else:
        word = "match" if more == 1 else "matches"
        assert message.endswith(f"; and {more} more possible {word}. A reviewer merges the "
                                "records or records that they are different people.")


def test_the_best_scores_are_listed_ties_by_record():
    matches = [match("0.95", record_id=5), match("0.93", record_id=11),
               match("1", record_id=7), match("0.95", record_id=3),
               match("1", record="roster", record_id=2)]
    _outcome, ids, more, _message = listing(3, matches)
    # score 1: donor 7 before roster 2 (record kind, then id); then the 0.95s by id
    assert ids == [7, 2, 3] and more == 2


def test_pairs_resolved_as_different_are_neither_listed_nor_counted():
    matches = [match("1", record_id=1 + 100 + i, different=i % 2 == 0) for i in range(10)]
    _outcome, ids, more, message = listing(2, matches)
    assert ids == [102, 104] and more == 3  # five different, two listed, three counted
    assert "and 3 more possible matches" in message


def test_matches_below_the_threshold_or_off_lab_are_not_counted():
    matches = [*namesakes(2), match("0.91", record_id=300),
               match("1", record_id=301, jobs=(job(covered=False),))]
    assert listing(1, matches)[1:3] == ([100], 1)


def test_the_limit_leaves_a_small_decision_as_a_version_without_it_makes_it():
    matches = namesakes(3)
    with_key = evaluate(policy(), gift(payer(*matches)), PLENTY)
    doc = default_doc()
    del doc["possible_match"]["max_listed"]
    without = evaluate(policy_from_mapping(doc), gift(payer(*matches)), PLENTY)
    assert with_key.figures == without.figures
    assert ([f.message for f in with_key.findings]
            == [f.message for f in without.findings])


@pytest.mark.parametrize("value", [0, -1, "10", 2.5, True])
def test_max_listed_must_be_a_whole_number_of_at_least_one(value):
    with pytest.raises(PolicyError, match="max_listed"):
        policy(**{"possible_match.max_listed": value})


@pytest.mark.parametrize(("changes", "problem"), [
    ({"possible_match.threshold": "0.85"}, "at least"),
    ({"possible_match.threshold": "1.5"}, "between 0 and 1"),
    ({"possible_match.phone_bonus": "x"}, "decimal"),
    ({"possible_match.initial_score": "0.92"}, "below the threshold"),
])
def test_thresholds_that_would_drop_candidates_are_refused(changes, problem):
    with pytest.raises(PolicyError, match=problem):
        policy(**changes)


def test_the_candidate_floor_is_below_every_allowed_threshold():
    settings = policy().settings[RULE]
    lowest = settings["threshold"] - settings["phone_bonus"] - settings["address_bonus"]
    assert lowest >= CANDIDATE_FLOOR

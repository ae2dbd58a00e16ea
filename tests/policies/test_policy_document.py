"""The versioned policy document: loading, overriding, validation and statements."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path

import pytest

from policies import DEFAULT_POLICY_FILE, Policy, PolicyError, load_policy
from policies.document import OUTCOMES, RULE_IDS, policy_from_mapping
from tests.policies.policy_builders import default_doc, policy

DEFAULT_OUTCOMES = {
    "lab_evaluation_payment": "reject",
    "senior_decision_maker": "reject",
    "lab_employee_cap": "reject",
    "lab_corporate_money": "hold",
    "lab_in_kind": "accept",
    "large_gift": "hold",
    # Not named in the file: the rule's default (it came after version 2026.2).
    "declaration_differs": "hold",
    "possible_senior_decision_maker": "hold",
    "possible_match": "hold",
    "household_of_senior_decision_maker": "hold",
}

DELETE = object()


def changed(**changes) -> dict:
    """The default document with dotted-path changes; a value of DELETE removes the key."""
    doc = copy.deepcopy(default_doc())
    for dotted, value in changes.items():
        *path, key = dotted.split(".")
        node = doc
        for part in path:
            node = node[part]
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return doc


# --- the shipped document ------------------------------------------------------------------


def test_default_policy_loads():
    loaded = load_policy()
    assert isinstance(loaded, Policy)
    assert loaded.version == "2026.4"
    assert loaded.name == "Independence policy"
    assert loaded.cap == Decimal("0.50")
    assert loaded.warning == Decimal("0.40")
    assert loaded.window_days == 365
    assert loaded.cooling_off_days == 365
    assert loaded.outcomes == DEFAULT_OUTCOMES
    # Every rule has a public statement: the rule's own, as the file words none itself.
    assert loaded.statements == {}
    assert all(loaded.statement(rule) and "{" not in loaded.statement(rule) for rule in RULE_IDS)


def test_default_path_is_the_shipped_file():
    assert DEFAULT_POLICY_FILE.name == "policy.toml"
    assert DEFAULT_POLICY_FILE.is_file()
    assert load_policy(DEFAULT_POLICY_FILE) == load_policy()
    assert load_policy(str(DEFAULT_POLICY_FILE)) == load_policy()


def test_policy_is_immutable():
    with pytest.raises(AttributeError):
        load_policy().cap = Decimal("0.9")  # type: ignore[misc]


# --- overriding values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "attribute", "expected"),
    [
        pytest.param({"version": "2027.2"}, "version", "2027.2", id="version"),
        pytest.param({"name": "Stricter policy"}, "name", "Stricter policy", id="name"),
        pytest.param({"lab_employee_share.cap": "0.25", "lab_employee_share.warning": "0.2"},
                     "cap", Decimal("0.25"), id="cap as string"),
        pytest.param({"lab_employee_share.cap": 0.3, "lab_employee_share.warning": 0.1},
                     "cap", Decimal("0.3"), id="cap as TOML float keeps its decimal text"),
        pytest.param({"lab_employee_share.warning": "0.45"}, "warning", Decimal("0.45"),
                     id="warning"),
        pytest.param({"lab_employee_share.warning": "0.50"}, "warning", Decimal("0.50"),
                     id="warning equal to cap is allowed"),
        pytest.param({"lab_employee_share.warning": DELETE}, "warning", Decimal("0.50"),
                     id="warning defaults to the cap"),
        pytest.param({"lab_employee_share.window_days": 90}, "window_days", 90,
                     id="window_days"),
        pytest.param({"lab_employee_share.window_days": 1}, "window_days", 1,
                     id="window_days of 1 is the minimum"),
        pytest.param({"affiliation.cooling_off_days": 730}, "cooling_off_days", 730,
                     id="cooling_off_days"),
        pytest.param({"name": DELETE}, "name", "Independence policy", id="name defaults"),
        pytest.param({"statements": DELETE}, "statements", {}, id="statements optional"),
    ],
)
def test_policy_from_mapping_overrides(changes, attribute, expected):
    assert getattr(policy_from_mapping(changed(**changes)), attribute) == expected


@pytest.mark.parametrize("rule", RULE_IDS)
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_every_rule_takes_every_outcome(rule, outcome):
    loaded = policy_from_mapping(changed(**{f"outcomes.{rule}": outcome}))
    assert loaded.outcomes[rule] == outcome
    assert loaded.outcomes == {**DEFAULT_OUTCOMES, rule: outcome}


def test_unknown_outcome_keys_are_dropped():
    loaded = policy_from_mapping(changed(**{"outcomes.some_future_rule": "hold"}))
    assert set(loaded.outcomes) == set(RULE_IDS)


def test_policy_from_mapping_does_not_mutate_its_input():
    doc = changed()
    before = copy.deepcopy(doc)
    policy_from_mapping(doc)
    assert doc == before


# --- invalid documents -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"version": DELETE}, id="missing version"),
        pytest.param({"version": ""}, id="empty version"),
        pytest.param({"version": "   "}, id="blank version"),
        pytest.param({"version": 2026}, id="version not a string"),
        pytest.param({"lab_employee_share": DELETE}, id="missing lab_employee_share"),
        pytest.param({"affiliation": DELETE}, id="missing affiliation"),
        pytest.param({"affiliation.cooling_off_days": DELETE}, id="missing cooling_off_days"),
        pytest.param({"outcomes": DELETE}, id="missing outcomes"),
        pytest.param({"lab_employee_share.cap": DELETE}, id="missing cap"),
        pytest.param({"lab_employee_share.cap": "0"}, id="cap 0"),
        pytest.param({"lab_employee_share.cap": "1"}, id="cap 1"),
        pytest.param({"lab_employee_share.cap": "1.5"}, id="cap above 1"),
        pytest.param({"lab_employee_share.cap": "-0.5"}, id="cap negative"),
        pytest.param({"lab_employee_share.cap": "half"}, id="cap not a number"),
        pytest.param({"lab_employee_share.cap": "NaN"}, id="cap NaN"),
        pytest.param({"lab_employee_share.cap": "Infinity"}, id="cap infinite"),
        pytest.param({"lab_employee_share.cap": True}, id="cap bool"),
        pytest.param({"lab_employee_share.warning": "0.6"}, id="warning above cap"),
        pytest.param({"lab_employee_share.warning": "0"}, id="warning 0"),
        pytest.param({"lab_employee_share.warning": "nan"}, id="warning NaN"),
        pytest.param({"outcomes.lab_corporate_money": "deny"}, id="bad outcome name"),
        pytest.param({"outcomes.lab_in_kind": "Accept"}, id="outcome names are lower case"),
        pytest.param({"outcomes.lab_in_kind": DELETE}, id="outcome missing for a rule"),
        pytest.param({"lab_employee_share.window_days": 0}, id="window_days 0"),
        pytest.param({"lab_employee_share.window_days": -30}, id="window_days negative"),
        pytest.param({"lab_employee_share.window_days": True}, id="window_days bool"),
        pytest.param({"lab_employee_share.window_days": "365"}, id="window_days string"),
        pytest.param({"lab_employee_share.window_days": 365.0}, id="window_days float"),
        pytest.param({"lab_employee_share.window_days": DELETE}, id="window_days missing"),
        pytest.param({"affiliation.cooling_off_days": 0}, id="cooling_off_days 0"),
        pytest.param({"affiliation.cooling_off_days": False}, id="cooling_off_days bool"),
        pytest.param({"outcomes": "reject"}, id="outcomes not a table"),
        pytest.param({"lab_employee_share": "0.5"}, id="lab_employee_share not a table"),
        pytest.param({"affiliation": 365}, id="affiliation not a table"),
        pytest.param({"statements": "We are independent."}, id="statements not a table"),
    ],
)
def test_invalid_documents_raise_policy_error(changes):
    with pytest.raises(PolicyError):
        policy_from_mapping(changed(**changes))


def test_policy_error_is_a_value_error():
    assert issubclass(PolicyError, ValueError)


def test_policy_error_messages_are_readable():
    with pytest.raises(PolicyError, match="version"):
        policy_from_mapping(changed(version=DELETE))
    with pytest.raises(PolicyError, match="cap must lie strictly between 0 and 1"):
        policy_from_mapping(changed(**{"lab_employee_share.cap": "1"}))
    with pytest.raises(PolicyError, match="warning level must not exceed the cap"):
        policy_from_mapping(changed(**{"lab_employee_share.warning": "0.6"}))
    with pytest.raises(PolicyError, match="lab_corporate_money"):
        policy_from_mapping(changed(**{"outcomes.lab_corporate_money": "deny"}))
    with pytest.raises(PolicyError, match="window_days"):
        policy_from_mapping(changed(**{"lab_employee_share.window_days": True}))


# --- load_policy from a file -------------------------------------------------------------------


def write_variant(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "policy.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_load_policy_from_a_path(tmp_path):
    path = write_variant(tmp_path, 'version = "2026.4"', 'version = "2026.4-test"')
    assert load_policy(path).version == "2026.4-test"
    assert load_policy(str(path)).version == "2026.4-test"


def test_load_policy_reads_the_numbers_from_the_file(tmp_path):
    path = write_variant(tmp_path, 'cap = "0.50"', 'cap = "0.45"')
    loaded = load_policy(path)
    assert loaded.cap == Decimal("0.45")
    assert loaded.warning == Decimal("0.40")


def test_load_policy_missing_file(tmp_path):
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(PolicyError, match="not found") as error:
        load_policy(missing)
    assert str(missing) in str(error.value)


def test_load_policy_invalid_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('version = "2026.1\n[outcomes\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(path)


def test_load_policy_valid_toml_but_invalid_policy(tmp_path):
    path = write_variant(tmp_path, 'lab_in_kind = "accept"', 'lab_in_kind = "maybe"')
    with pytest.raises(PolicyError, match="lab_in_kind"):
        load_policy(path)


def test_load_policy_empty_file(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(PolicyError):
        load_policy(path)


# --- statements ------------------------------------------------------------------------------


def test_default_statements():
    loaded = load_policy()
    assert loaded.statement("lab_employee_cap") == (
        "Donations from individual employees of frontier AI labs stay below 50% of our "
        "funding over any trailing 365-day window."
    )
    assert loaded.statement("lab_evaluation_payment") == (
        "We accept no payment from a frontier AI lab, or any of its affiliates, for running "
        "evaluations."
    )


@pytest.mark.parametrize(
    ("cap", "window_days", "expected"),
    [
        pytest.param("0.25", 90, "below 25% of our funding over any trailing 90-day window",
                     id="25% over 90 days"),
        pytest.param("0.333", 365, "below 33.3% of our", id="fractional percent"),
        pytest.param("0.5000", 365, "below 50% of our", id="trailing zeros dropped"),
        pytest.param("0.1", 30, "below 10% of our funding over any trailing 30-day window",
                     id="10% keeps its zero"),
    ],
)
def test_statement_uses_the_documents_numbers(cap, window_days, expected):
    loaded = policy(**{
        "lab_employee_share.cap": cap,
        "lab_employee_share.warning": cap,
        "lab_employee_share.window_days": window_days,
    })
    assert expected in loaded.statement("lab_employee_cap")
    assert "{" not in loaded.statement("lab_employee_cap")


def test_statement_of_an_unknown_rule_is_empty():
    assert load_policy().statement("no_such_rule") == ""


def test_statement_without_placeholders_is_returned_as_is():
    loaded = policy(**{"statements.lab_in_kind": "We disclose all in-kind support."})
    assert loaded.statement("lab_in_kind") == "We disclose all in-kind support."

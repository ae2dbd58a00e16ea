"""docs/policy.md documents every rule and every setting the policy has.

Engineers add rules and settings in parallel: a rule id in policies.rules.RULES, or a key
of policies/policy.toml, that docs/policy.md does not name fails here, and so does a rule
section for a rule that no longer exists.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from policies import DEFAULT_POLICY_FILE
from policies.rules import RULES

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _keys(table: dict, prefix: str = "") -> list[str]:
    """Every key of the TOML document, dotted (`lab_employee_share.cap`); a table with
    no keys of its own (an empty [statements]) by its name."""
    keys = []
    for name, value in table.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            keys += _keys(value, f"{path}.")
        else:
            keys.append(path)
    return keys


def test_every_rule_has_its_section_and_its_outcome_setting():
    doc = _doc()
    sections = set(re.findall(r"^### `([a-z_]+)`$", doc, flags=re.MULTILINE))
    rule_ids = {rule.id for rule in RULES}
    assert rule_ids - sections == set(), "rules missing from docs/policy.md"
    assert sections - rule_ids == set(), "docs/policy.md describes rules that do not exist"
    for rule_id in rule_ids:
        assert f"`outcomes.{rule_id}`" in doc, f"docs/policy.md: no row for outcomes.{rule_id}"


def test_every_key_of_the_policy_file_is_documented():
    with DEFAULT_POLICY_FILE.open("rb") as handle:
        document = tomllib.load(handle)
    doc = _doc()
    keys = _keys(document)
    assert "lab_employee_share.cap" in keys and "outcomes.lab_employee_cap" in keys
    missing = [key for key in keys if f"| `{key}` |" not in doc]
    assert missing == [], f"policy.toml keys missing from docs/policy.md's settings: {missing}"

"""The versioned policy document: a TOML file that holds every number the rules use.

Which rules there are, and what settings each reads, comes from policies.rules.RULES.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from policies.rules import RULE_BY_ID, RULES

DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.toml")

RULE_IDS = tuple(rule.id for rule in RULES)
OUTCOMES = ("accept", "hold", "reject")


class PolicyError(ValueError):
    """A policy document that is incomplete or inconsistent."""


@dataclass(frozen=True)
class Policy:
    version: str
    cap: Decimal
    warning: Decimal
    window_days: int
    cooling_off_days: int
    outcomes: dict[str, str]
    name: str = "Independence policy"
    #: The document's own wording of rules' statements (its [statements] table), if any.
    statements: dict[str, str] = field(default_factory=dict)
    #: Each rule's own settings, as its read_settings returned them, by rule id.
    settings: dict[str, dict] = field(default_factory=dict)
    #: An account approves overrides and enforcement changes only after holding a
    #: reviewing role (reviewer or admin) this many days ([approvals] min_role_age_days).
    approver_min_age_days: int = 7
    #: A change waiting for a second person may be approved this many days after it was
    #: proposed, no later ([approvals] pending_change_days): then it expires, unapplied.
    pending_change_days: int = 14

    def words(self, template: str) -> str:
        """A rule's text with this policy's numbers in it."""
        return template.format(
            cap_percent=f"{(self.cap * 100).normalize():f}%", window_days=self.window_days,
            cooling_off_days=self.cooling_off_days,
        )

    def statement(self, rule: str) -> str:
        """The public statement of a rule: the document's wording, else the rule's own."""
        known = RULE_BY_ID.get(rule)
        text = self.statements.get(rule) or (known.statement if known else "")
        return self.words(text)


def _decimal(value: object, name: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise PolicyError(f"{name} must be a decimal, got {value!r}") from None
    if not number.is_finite() or not 0 < number < 1:
        raise PolicyError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return number


def _days(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PolicyError(f"{name} must be a whole number of days >= 1, got {value!r}")
    return value


def _whole_days(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise PolicyError(f"{name} must be a whole number of days >= 0, got {value!r}")
    return value


def policy_from_mapping(doc: dict) -> Policy:
    if not isinstance(doc, dict):
        raise PolicyError("policy document must be a table")
    for section in ("lab_employee_share", "affiliation", "outcomes", "statements", "approvals"):
        if not isinstance(doc.get(section, {}), dict):
            raise PolicyError(f"policy document's [{section}] must be a table")
    try:
        share = doc["lab_employee_share"]
        version = doc["version"]
        cooling = doc["affiliation"]["cooling_off_days"]
        outcomes = dict(doc["outcomes"])
    except (KeyError, TypeError) as missing:
        raise PolicyError(f"policy document lacks {missing}") from None
    if not isinstance(version, str) or not version.strip():
        raise PolicyError("policy version must be a non-empty string")
    for rule in RULES:
        outcomes.setdefault(rule.id, rule.default_outcome)
        if outcomes[rule.id] not in OUTCOMES:
            raise PolicyError(f"outcome for rule {rule.id!r} must be one of {OUTCOMES}")
    cap = _decimal(share.get("cap"), "cap")
    warning = _decimal(share.get("warning", share.get("cap")), "warning")
    if warning > cap:
        raise PolicyError("warning level must not exceed the cap")
    return Policy(
        version=version,
        name=doc.get("name", "Independence policy"),
        cap=cap,
        warning=warning,
        window_days=_days(share.get("window_days"), "window_days"),
        cooling_off_days=_days(cooling, "cooling_off_days"),
        outcomes={rule: outcomes[rule] for rule in RULE_IDS},
        statements=dict(doc.get("statements", {})),
        settings=_rule_settings(doc),
        approver_min_age_days=_whole_days(doc.get("approvals", {}).get("min_role_age_days", 7),
                                          "min_role_age_days"),
        pending_change_days=_days(doc.get("approvals", {}).get("pending_change_days", 14),
                                  "pending_change_days"),
    )


def _rule_settings(doc: dict) -> dict[str, dict]:
    settings = {}
    for rule in RULES:
        if rule.read_settings is None:
            continue
        table = doc.get(rule.id, {})
        if not isinstance(table, dict):
            raise PolicyError(f"policy document's [{rule.id}] must be a table")
        try:
            settings[rule.id] = rule.read_settings(table)
        except ValueError as error:
            raise PolicyError(f"[{rule.id}] {error}") from None
    return settings


def load_policy(path: str | Path | None = None) -> Policy:
    """Read a policy document; the one shipped with the app when no path is given."""
    path = Path(path) if path else DEFAULT_POLICY_FILE
    try:
        with path.open("rb") as handle:
            doc = tomllib.load(handle)
    except FileNotFoundError:
        raise PolicyError(f"policy file not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"policy file {path} is not valid TOML: {error}") from None
    return policy_from_mapping(doc)

"""The versioned policy document: a TOML file that holds every number the rules use."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.toml")

RULE_IDS = (
    "lab_evaluation_payment",
    "senior_decision_maker",
    "lab_employee_cap",
    "lab_corporate_money",
    "lab_in_kind",
)
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
    statements: dict[str, str] = field(default_factory=dict)

    def statement(self, rule: str) -> str:
        text = self.statements.get(rule, "")
        return text.format(
            cap_percent=f"{(self.cap * 100).normalize():f}%", window_days=self.window_days
        )


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


def policy_from_mapping(doc: dict) -> Policy:
    if not isinstance(doc, dict):
        raise PolicyError("policy document must be a table")
    for section in ("lab_employee_share", "affiliation", "outcomes", "statements"):
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
    for rule in RULE_IDS:
        if outcomes.get(rule) not in OUTCOMES:
            raise PolicyError(f"outcome for rule {rule!r} must be one of {OUTCOMES}")
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
    )


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

"""How decisions read on the staff pages: rule names, figures and the share sentence.

Stored figures keep exact values (minor units, truncated share strings); this turns
them into the words and amounts a person reads. Nothing here changes a decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlmodel import Session

from models import Decision, User
from models.money import MoneyError, display_amount
from policies import percent_text
from policies.rules import RULES

OUTCOME_WORDS = {"accept": "accepted", "hold": "held for a reviewer", "reject": "rejected"}
KIND_LABELS = {"screening": "Screening", "rescreen": "Re-screen", "review": "Review",
               "override": "Override"}
RULE_LABELS = {rule.id: rule.label for rule in RULES}
#: (figure key, label, how to show it), in display order. Unknown keys follow, plainly.
_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("share_before", "Lab-employee share before", "percent"),
    ("share_after", "Lab-employee share after", "percent"),
    ("headroom_minor", "Headroom (before this gift)", "money"),
    ("gift_amount_minor", "Gift in reporting currency", "money"),
    ("gift_lab_employee_minor", "Lab-employee part of the gift", "money"),
    ("breaking_window_end", "Window that breaks the cap ends", "text"),
    ("breaking_share", "Share in that window", "percent"),
    ("windows_checked", "Windows checked", "text"),
    ("cap", "Cap", "percent"),
    ("warning", "Warning level", "percent"),
    ("window_days", "Window (days)", "text"),
    ("cooling_off_days", "Cooling-off (days)", "text"),
)
_SKIP = {"currency"}


def rule_label(rule: str) -> str:
    return RULE_LABELS.get(rule, rule.replace("_", " ").capitalize())


def percent(value: object) -> str | None:
    """A stored share string ("0.487000") as "48.7%"; None when absent or unreadable."""
    if value is None:
        return None
    try:
        return percent_text(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return str(value)


def money(value: object, currency: str) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return None if value is None else str(value)
    try:
        return display_amount(value, currency)
    except MoneyError:
        return f"{value} (minor units)"


def figure_rows(figures: dict) -> list[tuple[str, str]]:
    currency = figures.get("currency", "USD")
    rows: list[tuple[str, str]] = []
    seen = set(_SKIP)
    for key, label, how in _FIGURES:
        seen.add(key)
        if figures.get(key) is None:
            continue
        value = figures[key]
        text = (percent(value) if how == "percent" else
                money(value, currency) if how == "money" else str(value))
        rows.append((label, text or ""))
    for key, value in figures.items():
        if key in seen or value is None:
            continue
        if key.endswith("_minor"):
            rows.append((key.removesuffix("_minor").replace("_", " ").capitalize(),
                         money(value, currency) or ""))
        else:
            rows.append((key.replace("_", " ").capitalize(), str(value)))
    return rows


def share_sentence(figures: dict, kind: str = "cash", *, prospective: bool = True) -> str | None:
    """The share and headroom in words.

    Before recording: "This gift would bring the lab-employee share to 48.7% (from 45.2%);
    headroom 12,400.00 USD." For a stored decision, the same figures as they stood then.
    """
    after = percent(figures.get("share_after"))
    before = percent(figures.get("share_before"))
    room = money(figures.get("headroom_minor"), figures.get("currency", "USD"))
    if after is None or room is None:
        return None
    if kind != "cash":
        stays = "stays" if prospective else "stayed"
        return f"In-kind support is not funding: the lab-employee share {stays} at {after}; headroom {room}."
    since = f" (from {before})" if before is not None else ""
    if prospective:
        return f"This gift would bring the lab-employee share to {after}{since}; headroom {room}."
    return (f"When decided, this gift would bring the lab-employee share to {after}{since}; "
            f"headroom was {room}.")


def user_emails(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.email).where(User.id.in_(wanted))).all()
    return {row.id: row.email for row in rows}


@dataclass(frozen=True)
class DecisionView:
    """One decision as a page shows it."""

    decision: Decision
    kind_label: str
    decided_by: str | None
    approved_by: str | None
    figures: list[tuple[str, str]]
    sentence: str | None
    reasons: list[dict]


def decision_views(session: Session, decisions: list[Decision], gift_kind: str, *,
                   prospective: bool = False) -> list[DecisionView]:
    emails = user_emails(session, [d.decided_by_id for d in decisions]
                         + [d.approved_by_id for d in decisions])
    return [decision_view(d, gift_kind, emails, prospective=prospective) for d in decisions]


def decision_view(decision: Decision, gift_kind: str, emails: dict[int, str], *,
                  prospective: bool = False) -> DecisionView:
    def who(user_id: int | None) -> str | None:
        if user_id is None:
            return None
        return emails.get(user_id, f"user {user_id}")

    reasons = [{**r, "label": rule_label(str(r.get("rule", "")))} for r in decision.reasons or []]
    return DecisionView(
        decision=decision,
        kind_label=KIND_LABELS.get(decision.kind, decision.kind),
        decided_by=who(decision.decided_by_id),
        approved_by=who(decision.approved_by_id),
        figures=figure_rows(decision.figures or {}),
        sentence=share_sentence(decision.figures or {}, gift_kind, prospective=prospective),
        reasons=reasons,
    )

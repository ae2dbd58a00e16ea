"""Which part of an edit weakens enforcement and which part may apply at once. Pure.

A change weakens when it could let through money that would otherwise be stopped; only a
second person may make it take effect (app.ledger.changes). Each function here splits a
wanted edit into what applies now (tightening or neutral) and what waits, given the
record as it is and whether the organisations involved are covered. No database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Split:
    #: The record's values after the part that applies at once (every field of the record).
    now: dict
    #: The fields that wait for a second person, with the values they would get.
    pending: dict = field(default_factory=dict)
    #: The same fields as they stand after `now`: approval refuses if they moved since.
    before: dict = field(default_factory=dict)
    #: Why the pending part needs a second person, one line each.
    weakens: list[str] = field(default_factory=list)


def _names(name: str, aliases: list[str]) -> set[str]:
    return {n.strip().casefold() for n in [name, *aliases] if n.strip()}


def _merged(first: list[str], then: list[str], without: str) -> list[str]:
    """first, then the names of `then` not yet in it; none equal to `without` (casefold)."""
    seen = {without.strip().casefold()}
    out = []
    for alias in [*first, *then]:
        key = alias.strip().casefold()
        if key not in seen:
            seen.add(key)
            out.append(alias)
    return out


def split_organization(current: dict, wanted: dict, *, covered: bool,
                       covered_parent: Callable[[int | None], bool]) -> Split:
    """current, wanted: {name, covered_lab, aliases, parent_id}.

    covered: the organisation is covered now (itself or through its parent).
    covered_parent(id): whether that organisation (a parent) is covered.

    Weakening: covered_lab true to false; a parent link removed or moved away from a
    covered parent; a name or alias of a covered organisation dropped (names are how
    employers, imports and declarations find the lab: keeping the old name among the
    aliases makes a rename immediate). Everything else applies at once.
    """
    now = dict(current)
    pending: dict = {}
    weakens: list[str] = []

    if current["covered_lab"] and not wanted["covered_lab"]:
        pending["covered_lab"] = False
        weakens.append("covered_lab true to false: no longer a covered lab")
    else:
        now["covered_lab"] = wanted["covered_lab"]

    if (wanted["parent_id"] != current["parent_id"] and covered_parent(current["parent_id"])
            and not covered_parent(wanted["parent_id"])):
        pending["parent_id"] = wanted["parent_id"]
        weakens.append("parent link removed" if wanted["parent_id"] is None
                       else "parent moved away from a covered lab")
    else:
        now["parent_id"] = wanted["parent_id"]

    # Only a covered organisation's names stop money now (an edit that also covers it drops
    # nothing that stopped money before).
    lost = _names(current["name"], current["aliases"]) - _names(wanted["name"], wanted["aliases"])
    if covered and lost:
        # Additions apply now; the rename and removals wait, as one exact end state.
        now["aliases"] = _merged(current["aliases"], wanted["aliases"], current["name"])
        pending["name"] = wanted["name"]
        pending["aliases"] = list(wanted["aliases"])
        weakens.append("name or alias removed from a covered organisation: "
                       + ", ".join(sorted(lost)))
    else:
        now["name"] = wanted["name"]
        now["aliases"] = list(wanted["aliases"])
    before = {key: now[key] for key in pending}
    return Split(now=now, pending=pending, before=before, weakens=weakens)


def _day(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


def split_affiliation(current: dict, wanted: dict, *, covered_before: bool) -> Split:
    """current, wanted: {organization_id, kind, title, senior_decision_maker, start_date,
    end_date}. covered_before: the affiliation's organisation (as it is) is covered.

    At an organisation that is not covered the affiliation stops no money: all applies at
    once. At a covered one, weakening: moving it to another organisation, clearing the
    senior flag, an earlier end (or an end where there was none), a later start, and
    changing a title while the senior flag is off (titles flag possible senior roles).
    """
    if not covered_before:
        return Split(now=dict(wanted))
    if wanted["organization_id"] != current["organization_id"]:
        keys = list(wanted)
        return Split(now=dict(current), pending=dict(wanted),
                     before={k: current[k] for k in keys},
                     weakens=["moved away from a covered organisation"])
    now = dict(current)
    pending: dict = {}
    weakens: list[str] = []

    def wait(key: str, why: str) -> None:
        pending[key] = wanted[key]
        weakens.append(why)

    now["kind"] = wanted["kind"]
    if current["senior_decision_maker"] and not wanted["senior_decision_maker"]:
        wait("senior_decision_maker", "senior decision-maker flag cleared")
    else:
        now["senior_decision_maker"] = wanted["senior_decision_maker"]

    old_end, new_end = _day(current["end_date"]), _day(wanted["end_date"])
    if new_end is not None and (old_end is None or new_end < old_end):
        wait("end_date", "end date moved earlier" if old_end else "end date set on an open affiliation")
    else:
        now["end_date"] = wanted["end_date"]

    if _day(wanted["start_date"]) > _day(current["start_date"]):
        wait("start_date", "start date moved later")
    else:
        now["start_date"] = wanted["start_date"]

    if (current["title"] or None) != (wanted["title"] or None) and current["title"] \
            and not wanted["senior_decision_maker"]:
        wait("title", "title changed while not flagged senior")
    else:
        now["title"] = wanted["title"]
    before = {key: now[key] for key in pending}
    return Split(now=now, pending=pending, before=before, weakens=weakens)


_ROLE_FIELDS = ("organization_id", "title", "senior_decision_maker", "start_date", "end_date")


def split_roster_entry(current: dict, wanted: dict, *, covered_before: bool) -> Split:
    """current, wanted: {name, title, organization_id, start_date, end_date,
    senior_decision_maker, source}. covered_before: the entry's organisation is covered.

    A roster entry stops money as a lab role does (donors who are probably the person are
    held), so its role weakens as an affiliation's does (split_affiliation: moved away, senior
    flag cleared, an earlier end or an end set, a later start, a title changed while not
    senior); and so does a new name (donors with the old one are no longer matched). The
    source applies at once. At an organisation that is not covered, everything does.
    """
    if not covered_before:
        return Split(now=dict(wanted))
    role = split_affiliation({**{k: current[k] for k in _ROLE_FIELDS}, "kind": "employee"},
                             {**{k: wanted[k] for k in _ROLE_FIELDS}, "kind": "employee"},
                             covered_before=True)
    now = {**current, **{k: v for k, v in role.now.items() if k != "kind"},
           "source": wanted["source"]}
    pending = {k: v for k, v in role.pending.items() if k != "kind"}
    weakens = list(role.weakens)
    if wanted["name"] != current["name"]:
        pending["name"] = wanted["name"]
        weakens.append("name changed: donors with the old name are no longer matched")
    before = {key: now[key] for key in pending}
    return Split(now=now, pending=pending, before=before, weakens=weakens)


IN_KIND_FIELDS = ("organization_id", "description", "purpose", "start_date", "end_date",
                  "estimated_value_minor", "currency")


def split_in_kind(current: dict, wanted: dict, *, covered: bool, today: date) -> Split:
    """current, wanted: {organization_id, description, purpose, start_date, end_date,
    estimated_value_minor, currency}. covered: the arrangement's organisation is covered.

    In-kind support from a lab stops no money, but the conflict-of-interest disclosure
    publishes it: an edit that would take disclosed support out of it weakens what the
    organisation tells the public. At a covered organisation these wait: moving it to another
    organisation; a later start; an end before today where it was ongoing or ended later
    (ending it today or later applies at once: nothing since is hidden); rewording what is
    provided or its purpose; a lower or removed value, or another currency. Everything that
    shows more (an earlier start, a later or no end, a value raised or added) applies at
    once, and so does every edit at an organisation that is not covered.
    """
    if not covered:
        return Split(now=dict(wanted))
    if wanted["organization_id"] != current["organization_id"]:
        return Split(now=dict(current), pending=dict(wanted), before=dict(current),
                     weakens=["moved away from a covered organisation"])
    now = dict(current)
    pending: dict = {}
    weakens: list[str] = []

    def wait(keys: tuple[str, ...], why: str) -> None:
        for key in keys:
            pending[key] = wanted[key]
        weakens.append(why)

    if _day(wanted["start_date"]) > _day(current["start_date"]):
        wait(("start_date",), "start date moved later")
    else:
        now["start_date"] = wanted["start_date"]

    old_end, new_end = _day(current["end_date"]), _day(wanted["end_date"])
    if new_end is not None and new_end < today and (old_end is None or new_end < old_end):
        wait(("end_date",), "ended before today" if old_end is None else "end date moved earlier")
    else:
        now["end_date"] = wanted["end_date"]

    for key, why in (("description", "what is provided reworded"),
                     ("purpose", "purpose changed")):
        if wanted[key] != current[key]:
            wait((key,), why)

    old_value, new_value = current["estimated_value_minor"], wanted["estimated_value_minor"]
    if new_value != old_value or wanted["currency"] != current["currency"]:
        raised = (new_value is not None and wanted["currency"] == current["currency"]
                  and (old_value is None or new_value > old_value))
        if raised or (old_value is None and new_value is not None):
            now["estimated_value_minor"], now["currency"] = new_value, wanted["currency"]
        else:
            wait(("estimated_value_minor", "currency"), "estimated value lowered or removed")
    before = {key: now[key] for key in pending}
    return Split(now=now, pending=pending, before=before, weakens=weakens)

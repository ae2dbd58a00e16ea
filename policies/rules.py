"""The independence rules. Each takes plain facts and returns one Finding.

A rule that does not fire still returns a Finding (fired=False, outcome "accept")
so a decision shows every rule that was considered and why it passed.

Each rule also describes itself (Rule): its id, the names the pages give it, the public
statement of the promise it keeps and what a donor reads when it turns a gift down. The
policy document's outcomes, the policy form, the decision pages and the donate page's
refusals are all derived from RULES: adding a rule touches this module, the policy
file (the rule's outcome and settings) and the rule's tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from policies.facts import AffiliationFact, FundingFacts, GiftFacts, Party, WindowTotals
from policies.identity import CANDIDATE_FLOOR, Signals, match_score, score_text
from policies.share import (
    affiliation_counts,
    below_cap,
    headroom,
    lab_affiliations,
    lab_employee_minor,
    percent_text,
    share,
)

if TYPE_CHECKING:  # the document module reads RULES; rules only read a Policy's values
    from policies.document import Policy


@dataclass(frozen=True)
class Finding:
    rule: str
    outcome: str  # "accept" | "hold" | "reject"
    fired: bool
    message: str
    figures: dict = field(default_factory=dict)
    disclose: bool = False


@dataclass(frozen=True)
class Rule:
    """A rule and everything said about it.

    Texts may name the policy's numbers as {cap_percent}, {window_days} and
    {cooling_off_days} (Policy.words fills them in).
    """

    id: str
    check: Callable[[Policy, GiftFacts, FundingFacts], Finding]
    #: Its name on the decision pages ("why was this gift held").
    label: str
    #: What it is about, beside its outcome on the policy form.
    form_label: str
    #: The public promise, for the disclosure, unless the policy document words it itself.
    statement: str
    #: What a donor reads when the rule refuses an online gift; None: the statement.
    donor_text: str | None = None
    #: The outcome when a policy document names none. Only a rule added after the first
    #: policy version has one: documents stored before it (which lack its outcome) still load.
    default_outcome: str | None = None
    #: Reads and checks the rule's own settings, its [<id>] table of the policy document
    #: (empty when the document has none); raises ValueError on a bad value.
    read_settings: Callable[[Mapping], dict] | None = None


def _covered_sources(gift: GiftFacts) -> list[Party]:
    return [p for p in gift.parties if p.type == "organization" and p.organization_covered]


def _names(parties: list[Party]) -> str:
    return ", ".join(sorted({p.organization or p.name for p in parties}))


def lab_evaluation_payment(policy: Policy, gift: GiftFacts, funding: FundingFacts) -> Finding:
    rule = "lab_evaluation_payment"
    labs = _covered_sources(gift)
    if gift.kind == "cash" and gift.purpose == "evaluation_services" and labs:
        return Finding(
            rule, policy.outcomes[rule], True,
            f"Payment for evaluation services from a covered lab ({_names(labs)}).",
        )
    return Finding(rule, "accept", False, "Not a lab payment for evaluation services.")


def senior_decision_maker(policy: Policy, gift: GiftFacts, funding: FundingFacts) -> Finding:
    rule = "senior_decision_maker"
    seniors = []
    for party in gift.parties:
        for aff in lab_affiliations(party, gift.received_on, policy.cooling_off_days):
            if aff.senior_decision_maker:
                ended = f", ended {aff.end_date.isoformat()}" if aff.end_date else ""
                seniors.append(f"{party.name} ({aff.title or aff.kind} at {aff.organization}{ended})")
    if seniors:
        return Finding(
            rule, policy.outcomes[rule], True,
            "Senior decision-maker at a covered lab on the gift date or within the "
            f"{policy.cooling_off_days}-day cooling-off period: " + "; ".join(sorted(set(seniors))) + ".",
        )
    return Finding(rule, "accept", False, "No senior decision-maker at a covered lab.")


def lab_employee_cap(policy: Policy, gift: GiftFacts, funding: FundingFacts) -> Finding:
    """Every window that contains the gift must stay strictly below the cap with it added."""
    rule = "lab_employee_cap"
    lab_part = lab_employee_minor(gift, policy.cooling_off_days)
    counted = gift.amount_minor if gift.kind == "cash" else 0
    windows = funding.windows or (WindowTotals(gift.received_on, 0, 0),)
    first = windows[0] if windows else None
    figures: dict = {
        "gift_lab_employee_minor": lab_part,
        "share_before": share(first.lab_minor, first.total_minor) if first else None,
        "share_after": share(first.lab_minor + lab_part, first.total_minor + counted)
        if first else None,
        "headroom_minor": min(
            (headroom(w.lab_minor, w.total_minor, policy.cap) for w in windows), default=0
        ),
        "windows_checked": len(windows),
    }
    if lab_part == 0:
        return Finding(rule, "accept", False, "No part of this gift comes from lab employees.",
                       figures)
    broken = [
        w for w in windows
        if not below_cap(w.lab_minor + lab_part, w.total_minor + counted, policy.cap)
    ]
    if broken:
        worst = max(broken, key=lambda w: share(w.lab_minor + lab_part, w.total_minor + counted))
        figures["breaking_window_end"] = worst.end
        figures["breaking_share"] = share(worst.lab_minor + lab_part, worst.total_minor + counted)
        where = (
            "on the gift date" if worst.end == gift.received_on
            else f"in the window ending {worst.end.isoformat()}, a later date with accepted gifts"
        )
        return Finding(
            rule, policy.outcomes[rule], True,
            f"Lab-employee money would reach {percent_text(figures['breaking_share'])} of "
            f"funding {where}; it must stay below {percent_text(policy.cap)}.",
            figures,
        )
    return Finding(
        rule, "accept", False,
        f"Lab-employee share would be {percent_text(figures['share_after'])}, below "
        f"{percent_text(policy.cap)} in every window containing the gift "
        f"({len(windows)} checked).",
        figures,
    )


def lab_corporate_money(policy: Policy, gift: GiftFacts, funding: FundingFacts) -> Finding:
    rule = "lab_corporate_money"
    labs = _covered_sources(gift)
    if gift.kind == "cash" and labs and gift.purpose != "evaluation_services":
        what = "An employer matching gift" if gift.is_matching_gift else "Money"
        return Finding(
            rule, policy.outcomes[rule], True,
            f"{what} from a covered lab ({_names(labs)}) needs a reviewer's decision.",
        )
    return Finding(rule, "accept", False, "No other money from a covered lab.")


def lab_in_kind(policy: Policy, gift: GiftFacts, funding: FundingFacts) -> Finding:
    rule = "lab_in_kind"
    labs = _covered_sources(gift)
    if gift.kind == "in_kind" and labs:
        return Finding(
            rule, policy.outcomes[rule], True,
            f"In-kind support from a covered lab ({_names(labs)}): not funding; "
            "recorded for the conflict-of-interest disclosure.",
            disclose=True,
        )
    return Finding(rule, "accept", False, "No in-kind support from a covered lab.")


def large_gift(policy: Policy, gift: GiftFacts, funding: FundingFacts) -> Finding:
    """One gift this large moves the lab-employee share and every window's headroom at once
    (and is more often a typing error than a gift): a person looks at it first."""
    rule = "large_gift"
    threshold = policy.settings.get(rule, {}).get("threshold_minor")
    if threshold is None:
        return Finding(rule, "accept", False, "This policy version sets no large-gift threshold.")
    if gift.kind == "cash" and gift.amount_minor >= threshold:
        return Finding(
            rule, policy.outcomes[rule], True,
            "A gift at or above the policy's large-gift threshold needs a reviewer's decision.",
        )
    return Finding(rule, "accept", False, "Below the policy's large-gift threshold.")


def _on_file(declared: AffiliationFact, party: Party, on: date, cooling_off_days: int) -> bool:
    """The record already says what was declared: the same organisation, counting on the
    date, and senior if a senior role was declared."""
    return any(
        not a.declared and a.organization == declared.organization
        and affiliation_counts(a, on, cooling_off_days)
        and (a.senior_decision_maker or not declared.senior_decision_maker)
        for a in party.affiliations
    )


def declaration_differs(policy: Policy, gift: GiftFacts, funding: FundingFacts) -> Finding:
    """A member of the public typed a lab role the donor's record does not show. The other
    rules already screen it as if true; this one keeps the claim off the record until a
    reviewer applies or dismisses it (anyone can type anyone's e-mail address)."""
    rule = "declaration_differs"
    claims = []
    for party in gift.parties:
        for aff in party.affiliations:
            if aff.declared and aff.covered and not _on_file(aff, party, gift.received_on,
                                                             policy.cooling_off_days):
                role = "senior decision-maker" if aff.senior_decision_maker else aff.kind
                claims.append(f"{party.name} ({role} at {aff.organization})")
    if claims:
        return Finding(
            rule, policy.outcomes[rule], True,
            "Declared on the donation form but not on the donor's record: "
            + "; ".join(sorted(set(claims)))
            + ". A reviewer applies the declaration to the record or dismisses it.",
        )
    return Finding(rule, "accept", False, "No declaration that differs from the record.")


#: Titles that suggest a senior decision-maker, for policy documents that name none (those
#: stored before the rule). policy.toml lists the same words; a new version may change them.
DEFAULT_SENIOR_TITLES = (
    "chief", "CEO", "CTO", "COO", "CFO", "CSO", "CISO", "president", "vice president", "VP",
    "SVP", "EVP", "head of", "director", "managing director", "founder", "board member",
    "board", "trustee", "chair", "chairman", "chairwoman", "chairperson", "partner",
    "general counsel",
)


def senior_title_pattern(titles: tuple[str, ...]) -> re.Pattern:
    """One case-insensitive pattern: any of the words, as whole words ("VP" is in "VP
    Research", not in "MVP"; "director" is in "Director's assistant", which is held once and
    cleared by a reviewer: a needless question costs less than a missed senior). Spaces in
    a term match any run of spaces or hyphens ("Vice-President")."""
    parts = sorted((r"[\s\-]+".join(map(re.escape, t.split())) for t in titles),
                   key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


def _senior_title_settings(table: Mapping) -> dict:
    titles = table.get("titles", DEFAULT_SENIOR_TITLES)
    if (not isinstance(titles, list | tuple) or not titles
            or not all(isinstance(t, str) and t.strip() for t in titles)):
        raise ValueError("titles must be a non-empty list of words or phrases")
    titles = tuple(t.strip() for t in titles)
    return {"titles": titles, "pattern": senior_title_pattern(titles)}


def senior_words(policy: Policy, title: str | None) -> str | None:
    """The words of the title that suggest a senior role under this policy, or None."""
    if not title:
        return None
    settings = policy.settings.get("possible_senior_decision_maker") or _senior_title_settings({})
    match = settings["pattern"].search(title)
    return match.group(0) if match else None


def possible_senior_decision_maker(policy: Policy, gift: GiftFacts,
                                   funding: FundingFacts) -> Finding:
    """A title that reads like a senior role ("Vice President of Research") at a covered lab
    without the senior flag: a typing slip there would let a senior decision-maker's money
    in, so a reviewer looks first. Confirming the flag makes rule senior_decision_maker
    refuse; clearing it (the title is reviewed as not senior) stops this question."""
    rule = "possible_senior_decision_maker"
    found = []
    for party in gift.parties:
        for aff in lab_affiliations(party, gift.received_on, policy.cooling_off_days):
            if (aff.senior_decision_maker or aff.declared or not aff.title
                    or aff.title_cleared == aff.title):
                continue
            words = senior_words(policy, aff.title)
            if words:
                found.append(f"{party.name} ({aff.title} at {aff.organization}: \"{words}\")")
    if found:
        return Finding(
            rule, policy.outcomes[rule], True,
            "A title at a covered lab that suggests a senior decision-maker, not marked "
            "senior: " + "; ".join(sorted(set(found))) + ". A reviewer confirms the senior "
            "flag or clears the title.",
        )
    return Finding(rule, "accept", False,
                   "No unreviewed title suggesting a senior role at a covered lab.")


def possible_match(policy: Policy, gift: GiftFacts, funding: FundingFacts) -> Finding:
    """A party that is probably the same person as another record (a donor, a roster entry)
    with a covered-lab affiliation counting on the gift date: a second record must not
    take money past the rules the first one is screened by. Held for a reviewer, who
    merges the records or records that they are different people (never asked again)."""
    rule = "possible_match"
    settings = policy.settings.get(rule) or _possible_match_settings({})
    found, seen = [], set()
    for party in gift.parties:  # the payer is usually among the attributions too: once each
        for match in party.possible_matches:
            key = (party.donor_id, match.record, match.record_id)
            if key in seen or match.different or (match.record == "donor"
                                                  and match.record_id == party.donor_id):
                continue
            seen.add(key)
            score = match_score(
                Signals(match.name_similarity, match.same_email, match.same_phone,
                        match.same_address, match.same_initial),
                phone_bonus=settings["phone_bonus"], address_bonus=settings["address_bonus"],
                initial_score=settings.get("initial_score"))
            if score >= settings["threshold"] and any(
                    a.covered and affiliation_counts(a, gift.received_on, policy.cooling_off_days)
                    for a in match.affiliations):
                found.append((party, match, score))
    if not found:
        return Finding(rule, "accept", False,
                       "No other record with a lab affiliation probably names the same person.")
    found.sort(key=lambda item: (-item[2], item[1].record, item[1].record_id))
    # Only the best max_listed are listed (policy [possible_match] max_listed; a version
    # without it lists all): a common name's dozens of lab-side namesakes would otherwise
    # each cost their labs, figures and words in every decision. The others are counted.
    limit = settings.get("max_listed")
    listed = found if limit is None else found[:limit]
    more = len(found) - len(listed)
    listed = [(party, match, score, _counting_labs(policy, gift, match))
              for party, match, score in listed]
    threshold = score_text(settings["threshold"])
    figures = {"possible_matches": [
        {"donor_id": party.donor_id, "record": match.record, "record_id": match.record_id,
         "name": match.name, "score": score_text(score), "threshold": threshold,
         "same_email": match.same_email, "same_phone": match.same_phone,
         "same_address": match.same_address, "labs": labs,
         # Only where it counted, so figures of other matches stay as they were.
         **({"same_initial": True} if _initial_counted(match, settings) else {})}
        for party, match, score, labs in listed
    ]}
    named = "; ".join(
        f"{party.name} (donor {party.donor_id}) is probably {match.record} {match.record_id} "
        f"{match.name} (score {score_text(score)}{_evidence(match, settings)}, "
        f"at {', '.join(labs)})"
        for party, match, score, labs in listed)
    if more:  # only then, so decisions under a version without the limit stay as they were
        figures["more_possible_matches"] = more
        named += f"; and {more} more possible match{'es' if more > 1 else ''}"
    return Finding(
        rule, policy.outcomes[rule], True,
        f"Possible match with a record affiliated with a covered lab: {named}. A reviewer "
        "merges the records or records that they are different people.",
        figures,
    )


def _counting_labs(policy: Policy, gift: GiftFacts, match) -> list[str]:
    """The covered labs of a match's affiliations counting on the gift date."""
    return sorted({a.organization for a in match.affiliations if a.covered
                   and affiliation_counts(a, gift.received_on, policy.cooling_off_days)})


def _initial_counted(match, settings: Mapping) -> bool:
    """An initial agreeing counts towards the score (policy [possible_match] initial_score;
    the same e-mail scores 1 whatever the names)."""
    return (match.same_initial and not match.same_email
            and settings.get("initial_score") is not None)


def _evidence(match, settings: Mapping) -> str:
    """Why an initial-only name scored: the initial and surname agree, and what else does."""
    if not _initial_counted(match, settings):
        return ""
    also = [what for what, same in (("phone", match.same_phone),
                                    ("postal address", match.same_address)) if same]
    return (": the surname and the initial of the given name agree"
            + (", and the same " + " and ".join(also) if also else ""))


#: How a relationship kind reads after "is" ("Ann Spouse is the spouse or partner of ...").
RELATION_WORDS = {
    "household": "a household member of",
    "spouse_partner": "the spouse or partner of",
    "family": "family of",
    "colleague": "a colleague of",
}


def household_of_senior_decision_maker(policy: Policy, gift: GiftFacts,
                                       funding: FundingFacts) -> Finding:
    """A gift from the spouse, partner or household of a senior decision-maker at a covered
    lab: the household's money may be the decision-maker's own, given by another hand (the
    known way around rule senior_decision_maker). Only when the policy enables it; held for
    a reviewer, who decides whether the money is really the donor's own. The relationship
    must hold on the gift date, and the relative's senior role count on it (tenure or
    cooling-off, as for the decision-maker's own gifts)."""
    rule = "household_of_senior_decision_maker"
    settings = policy.settings.get(rule) or {}
    if not settings.get("enabled"):
        return Finding(rule, "accept", False,
                       "This policy version does not screen the households of senior "
                       "decision-makers.")
    found, related = [], []
    for party in gift.parties:
        if party.type != "person":
            continue
        for relative in party.relatives:
            if relative.kind not in settings["kinds"] or not relative.holds_on(gift.received_on):
                continue
            for aff in relative.affiliations:
                if (aff.covered and aff.senior_decision_maker
                        and affiliation_counts(aff, gift.received_on, policy.cooling_off_days)):
                    ended = f", ended {aff.end_date.isoformat()}" if aff.end_date else ""
                    found.append(f"{party.name} is {RELATION_WORDS[relative.kind]} "
                                 f"{relative.name} ({aff.title or aff.kind} at "
                                 f"{aff.organization}{ended})")
                    related.append({"donor_id": party.donor_id,
                                    "related_donor_id": relative.donor_id,
                                    "relationship": relative.kind,
                                    "organization": aff.organization})
    if not found:
        return Finding(rule, "accept", False,
                       "No spouse, partner or household member is a senior decision-maker at "
                       "a covered lab.")
    unique = sorted({tuple(sorted(r.items())) for r in related})
    return Finding(
        rule, policy.outcomes[rule], True,
        "From the household of a senior decision-maker at a covered lab: "
        + "; ".join(sorted(set(found))) + ". A reviewer decides whether the money is the "
        "donor's own.",
        {"related_senior_decision_makers": [dict(r) for r in unique]},
    )


def _household_settings(table: Mapping) -> dict:
    """Off unless the document turns it on (versions before the rule have no table)."""
    enabled = table.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ValueError(f"enabled must be true or false, got {enabled!r}")
    kinds = table.get("kinds", ["household", "spouse_partner"])
    if (not isinstance(kinds, list | tuple) or not kinds
            or any(k not in RELATION_WORDS for k in kinds)):
        raise ValueError("kinds must be a non-empty list of: " + ", ".join(RELATION_WORDS))
    return {"enabled": enabled, "kinds": tuple(kinds)}


def _score(table: Mapping, name: str, default: str) -> Decimal:
    value = table.get(name, default)
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"{name} must be a decimal, got {value!r}") from None
    if not number.is_finite() or not 0 <= number <= 1:
        raise ValueError(f"{name} must lie between 0 and 1, got {value!r}")
    return number


def _possible_match_settings(table: Mapping) -> dict:
    """Documents from before the rule have no table: they screen with these defaults (the
    values shipped in policy.toml), never with no matching at all."""
    settings = {
        "threshold": _score(table, "threshold", "0.92"),
        "phone_bonus": _score(table, "phone_bonus", "0.05"),
        "address_bonus": _score(table, "address_bonus", "0.05"),
    }
    lowest = settings["threshold"] - settings["phone_bonus"] - settings["address_bonus"]
    if lowest < CANDIDATE_FLOOR:
        raise ValueError(f"threshold minus the bonuses must be at least {CANDIDATE_FLOOR} "
                         f"(candidates less alike are not gathered), got {lowest}")
    # A document without it (versions before it) gives an initial no weight of its own.
    if "initial_score" in table:
        settings["initial_score"] = _score(table, "initial_score", "0")
        if settings["initial_score"] >= settings["threshold"]:
            raise ValueError("initial_score must be below the threshold: an initial that "
                             "agrees is never enough alone, only with a same phone or "
                             f"address, got {settings['initial_score']}")
    # A document without it (versions before 2026.4) lists every possible match.
    if "max_listed" in table:
        limit = table["max_listed"]
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"max_listed must be a whole number >= 1, got {limit!r}")
        settings["max_listed"] = limit
    return settings


def _large_gift_settings(table: Mapping) -> dict:
    if "threshold_minor" not in table:  # a document from before the rule: it never fires
        return {}
    value = table["threshold_minor"]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"threshold_minor must be a whole number of minor units >= 1, "
                         f"got {value!r}")
    return {"threshold_minor": value}


RULES: tuple[Rule, ...] = (
    Rule(
        "lab_evaluation_payment", lab_evaluation_payment,
        label="Lab payment for evaluations",
        form_label="Lab payment for evaluations",
        statement="We accept no payment from a frontier AI lab, or any of its affiliates, "
                  "for running evaluations.",
        donor_text="We do not accept payment from a frontier AI lab, or any of its affiliates, "
                   "for running evaluations.",
    ),
    Rule(
        "senior_decision_maker", senior_decision_maker,
        label="Senior decision-maker",
        form_label="Gift from a lab's senior decision-maker",
        statement="We accept no gifts from senior decision-makers at frontier AI labs, during "
                  "their tenure or within the cooling-off period after it.",
        donor_text="We are not able to accept this gift. To stay independent of the companies "
                   "whose AI systems we evaluate, we do not accept gifts from senior "
                   "decision-makers at frontier AI labs, during their tenure or within "
                   "{cooling_off_days} days after it.",
    ),
    Rule(
        "lab_employee_cap", lab_employee_cap,
        label="Lab-employee share cap",
        form_label="Lab-employee share at or over the cap",
        statement="Donations from individual employees of frontier AI labs stay below "
                  "{cap_percent} of our funding over any trailing {window_days}-day window.",
        donor_text="We are not able to accept this gift right now. Gifts from employees of "
                   "frontier AI labs must stay below {cap_percent} of our funding over any "
                   "{window_days} days, and this gift would take us past that limit. A smaller "
                   "gift, or one later in the year, may be possible.",
    ),
    Rule(
        "lab_corporate_money", lab_corporate_money,
        label="Lab corporate money",
        form_label="Other money from a lab (corporate, matching)",
        statement="Any other money from a frontier AI lab (a corporate gift, an employer "
                  "matching gift) is held for a decision by a compliance reviewer.",
    ),
    Rule(
        "lab_in_kind", lab_in_kind,
        label="Lab in-kind support",
        form_label="In-kind support from a lab",
        statement="Free model access and other in-kind support from labs is not funding; we "
                  "disclose every such arrangement as a potential conflict of interest.",
    ),
    Rule(
        "large_gift", large_gift,
        label="Large gift",
        form_label="Gift at or above the large-gift threshold",
        statement="A single gift at or above the large-gift threshold set in our policy is "
                  "held for a decision by a compliance reviewer before it counts as funding.",
        default_outcome="hold",
        read_settings=_large_gift_settings,
    ),
    Rule(
        "declaration_differs", declaration_differs,
        label="Declaration differs from the record",
        form_label="Donation-form declaration not on the donor's record",
        statement="What a donor declares on our donation form (a lab employer, a senior "
                  "role) is screened as if true but changes no existing donor record: a gift "
                  "whose declaration differs from the record is held until a compliance "
                  "reviewer applies or dismisses the declaration.",
        default_outcome="hold",
    ),
    Rule(
        "possible_senior_decision_maker", possible_senior_decision_maker,
        label="Title suggests a senior decision-maker",
        form_label="Senior-sounding title at a lab, not marked senior",
        statement="A gift from someone whose title at a frontier AI lab suggests a senior "
                  "role (a chief, a vice president, a director, a founder, a board member...) "
                  "but who is not marked as a senior decision-maker is held until a "
                  "compliance reviewer confirms or clears the role.",
        default_outcome="hold",
        read_settings=_senior_title_settings,
    ),
    Rule(
        "possible_match", possible_match,
        label="Possible match with a lab-affiliated record",
        form_label="Donor probably the same person as a lab-affiliated record",
        statement="A gift from a donor who is probably the same person as another record "
                  "with a frontier AI lab affiliation (another donor record, or someone on "
                  "our roster of lab staff) is held until a compliance reviewer merges the "
                  "records or confirms they are different people.",
        default_outcome="hold",
        read_settings=_possible_match_settings,
    ),
    Rule(
        "household_of_senior_decision_maker", household_of_senior_decision_maker,
        label="Household of a senior decision-maker",
        form_label="Gift from a lab senior decision-maker's spouse, partner or household",
        statement="A gift from the spouse, partner or household member of a senior "
                  "decision-maker at a frontier AI lab is held until a compliance reviewer "
                  "decides whether the money is really the donor's own.",
        default_outcome="hold",
        read_settings=_household_settings,
    ),
)

RULE_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}

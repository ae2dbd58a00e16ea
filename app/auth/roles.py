"""Who may do what. Deny by default: a permission not listed here is nobody's."""

from __future__ import annotations

READ = "read"

PERMISSIONS: dict[str, frozenset[str]] = {
    READ: frozenset({"viewer", "fundraiser", "reviewer", "finance", "admin"}),
    "donors.write": frozenset({"fundraiser", "admin"}),
    "gifts.write": frozenset({"fundraiser", "admin"}),
    "pledges.write": frozenset({"fundraiser", "admin"}),
    "organizations.write": frozenset({"fundraiser", "reviewer", "admin"}),
    "affiliations.write": frozenset({"fundraiser", "reviewer", "admin"}),
    "in_kind.write": frozenset({"fundraiser", "reviewer", "admin"}),
    #: Interactions on a donor's timeline and staff tasks: everyone who deals with donors.
    "contacts.write": frozenset({"fundraiser", "reviewer", "finance", "admin"}),
    #: Campaigns, appeals and funds: fundraisers run them; finance keeps the funds.
    "campaigns.write": frozenset({"fundraiser", "finance", "admin"}),
    "review": frozenset({"reviewer", "admin"}),
    #: Declining a pending change: a reviewer or admin, or its proposer withdrawing it
    #: (app.ledger.changes.decline_change checks which).
    "changes.decline": frozenset({"fundraiser", "reviewer", "admin"}),
    "refunds": frozenset({"finance", "admin"}),
    #: Pausing, resuming, changing the amount of or cancelling a monthly gift in Stripe: it
    #: changes what a donor is charged, which finance answers for (as refunds); fundraisers
    #: see the list (READ) and ask finance.
    "recurring.manage": frozenset({"finance", "admin"}),
    #: Publishing the public funding page (app.ledger.funding_report): finance answers for
    #: the figures, reviewers publish the disclosures beside it.
    "funding.publish": frozenset({"reviewer", "finance", "admin"}),
    #: Voiding or correcting a gift recorded in error (app.ledger.corrections): finance
    #: keeps the books straight, as for refunds.
    "gifts.correct": frozenset({"finance", "admin"}),
    #: Recording that a printed acknowledgement was posted: finance sends the post.
    "acknowledgements.post": frozenset({"fundraiser", "finance", "admin"}),
    #: The year-end batch: every donor's statement printed or e-mailed at once. Finance.
    "statements.year_end": frozenset({"finance", "admin"}),
    "exports": frozenset({"finance", "admin"}),
    #: A report's list of donors as CSV (LYBUNT, SYBUNT, first-time): the people fundraisers
    #: call, so theirs too; the full ledger export stays with finance ("exports").
    "reports.export": frozenset({"fundraiser", "finance", "admin"}),
    #: A staff list as filtered (gifts, donors, a donor segment) as CSV: what the role sees on
    #: the page already. Fundraisers work from these lists; viewers read without taking copies.
    "lists.export": frozenset({"fundraiser", "finance", "admin"}),
    #: Saved donor segments (app.ledger.segments): fundraisers build them for their appeals.
    "segments.write": frozenset({"fundraiser", "finance", "admin"}),
    "budget": frozenset({"finance", "admin"}),
    "admin": frozenset({"admin"}),
}


def allowed(role: str | None, permission: str) -> bool:
    return role is not None and role in PERMISSIONS.get(permission, frozenset())

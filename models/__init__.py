"""SQLModel tables. Importing this package registers every table on the metadata."""

from models.append_only import install as _install_append_only
from models.audit import GENESIS_HASH, AuditEntry
from models.base import metadata, utcnow
from models.campaigns import Appeal, Campaign, Fund, GiftDesignation
from models.changes import PendingChange
from models.checkpoints import AuditCheckpoint
from models.contacts import Interaction, Task
from models.corrections import GiftCorrection
from models.disclosures import Acknowledgement, PublishedDisclosure, PublishedFundingReport
from models.finance import CashSnapshot, FiscalBudget, FundraisingGoal, MonthlySpend
from models.funding import FundingDay, FundingMixDay, LedgerLock
from models.gifts import (
    OUTCOME_STATUS,
    Attribution,
    Decision,
    Gift,
    GiftTribute,
    IllegalTransition,
    OverrideRequest,
    Refund,
    transition,
)
from models.gifts import make_append_only as _make_append_only
from models.idempotency import IdempotencyKey
from models.identity import IdentityVerdict, RosterEntry
from models.imports import DonorExternalId
from models.inkind import InKindArrangement
from models.jobs import IllegalJobTransition, Job
from models.online import (
    DeferredRefund,
    DonationGift,
    OnlineDonation,
    RefusedDeclaration,
    StripeDispute,
    StripeEvent,
    StripeInstall,
    StripeSettlement,
    StripeUnmatchedEvent,
)
from models.parties import Affiliation, Donor, DonorMerge, Organization
from models.pledges import IllegalPledgeTransition, Pledge, PledgeInstalment, move_pledge
from models.policy_versions import PolicyVersion
from models.public_support import SupportClass, SupportFactRemoval, SupportLink, UnusualGrant
from models.relationships import Relationship
from models.segments import DonorTag, Segment
from models.users import LINK_PURPOSES, ROLES, AccountLink, ApiToken, SignInThrottle, User

# Append-only in the ORM (models.gifts) and in the database (models.append_only).
_make_append_only(Refund, PublishedDisclosure, PublishedFundingReport, PolicyVersion)
_install_append_only(metadata)

__all__ = [
    "GENESIS_HASH",
    "OUTCOME_STATUS",
    "ROLES",
    "Acknowledgement",
    "Affiliation",
    "AccountLink",
    "Appeal",
    "Campaign",
    "Fund",
    "GiftDesignation",
    "GiftTribute",
    "ApiToken",
    "LINK_PURPOSES",
    "Attribution",
    "AuditCheckpoint",
    "AuditEntry",
    "CashSnapshot",
    "Decision",
    "DeferredRefund",
    "Donor",
    "DonorExternalId",
    "DonorMerge",
    "DonorTag",
    "FiscalBudget",
    "FundingDay",
    "FundingMixDay",
    "FundraisingGoal",
    "Gift",
    "GiftCorrection",
    "IdempotencyKey",
    "IdentityVerdict",
    "IllegalPledgeTransition",
    "IllegalTransition",
    "InKindArrangement",
    "IllegalJobTransition",
    "Interaction",
    "Job",
    "LedgerLock",
    "MonthlySpend",
    "OnlineDonation",
    "DonationGift",
    "RefusedDeclaration",
    "Relationship",
    "Organization",
    "OverrideRequest",
    "PendingChange",
    "Pledge",
    "PledgeInstalment",
    "PolicyVersion",
    "PublishedDisclosure",
    "PublishedFundingReport",
    "RosterEntry",
    "Segment",
    "Refund",
    "SignInThrottle",
    "StripeDispute",
    "StripeEvent",
    "StripeInstall",
    "StripeSettlement",
    "StripeUnmatchedEvent",
    "SupportClass",
    "SupportFactRemoval",
    "SupportLink",
    "UnusualGrant",
    "Task",
    "User",
    "metadata",
    "move_pledge",
    "transition",
    "utcnow",
]

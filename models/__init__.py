"""SQLModel tables. Importing this package registers every table on the metadata."""

from models.audit import GENESIS_HASH, AuditEntry
from models.base import metadata, utcnow
from models.funding import FundingDay, LedgerLock
from models.gifts import (
    OUTCOME_STATUS,
    Attribution,
    Decision,
    Gift,
    IllegalTransition,
    OverrideRequest,
    Refund,
    transition,
)
from models.inkind import InKindArrangement
from models.parties import Affiliation, Donor, Organization
from models.pledges import Pledge, PledgeInstalment
from models.policy_versions import PolicyVersion
from models.users import ROLES, ApiToken, User

__all__ = [
    "GENESIS_HASH",
    "OUTCOME_STATUS",
    "ROLES",
    "Affiliation",
    "ApiToken",
    "Attribution",
    "AuditEntry",
    "Decision",
    "Donor",
    "FundingDay",
    "Gift",
    "IllegalTransition",
    "InKindArrangement",
    "LedgerLock",
    "Organization",
    "OverrideRequest",
    "Pledge",
    "PledgeInstalment",
    "PolicyVersion",
    "Refund",
    "User",
    "metadata",
    "transition",
    "utcnow",
]

"""Which policy version is in force, and how a new one comes into force.

The newest row of policy_version is the active policy. `init-db` registers the
policy file (shipped, or POLICY_FILE) on a new installation only; every later version
is proposed and approved by two people (app.ledger.changes). With no rows yet (a fresh
test database) the file policy applies. Versions are never edited: old decisions keep
theirs.
"""

from __future__ import annotations

import tomllib

import tomli_w
from sqlalchemy import select
from sqlmodel import Session

from app.db.locking import ledger_write
from app.errors import ValidationFailed
from app.ledger import audit
from app.ledger.audit import Actor
from models import PolicyVersion
from policies import Policy, PolicyError
from policies.document import policy_from_mapping


class PolicyCache:
    """Parses each stored version once per process."""

    def __init__(self, fallback: Policy, fallback_text: str):
        self.fallback = fallback
        self.fallback_text = fallback_text
        self._parsed: dict[int, Policy] = {}

    def current(self, session: Session) -> Policy:
        row = session.execute(
            select(PolicyVersion.id, PolicyVersion.document)
            .order_by(PolicyVersion.id.desc()).limit(1)
        ).first()
        if row is None:
            return self.fallback
        version_id, document = row
        if version_id not in self._parsed:
            self._parsed[version_id] = policy_from_mapping(tomllib.loads(document))
        return self._parsed[version_id]

    def at(self, session: Session, version_id: int | None) -> Policy:
        """The policy of a stored version whose id the caller read (None: no version stored
        yet, the file policy), parsed once per process; read only if not parsed yet."""
        if version_id is None:
            return self.fallback
        if version_id not in self._parsed:
            document = session.execute(select(PolicyVersion.document)
                                       .where(PolicyVersion.id == version_id)).scalar_one()
            self._parsed[version_id] = policy_from_mapping(tomllib.loads(document))
        return self._parsed[version_id]

    def current_document(self, session: Session) -> dict:
        text = session.execute(
            select(PolicyVersion.document).order_by(PolicyVersion.id.desc()).limit(1)
        ).scalar_one_or_none()
        return tomllib.loads(text or self.fallback_text)


def register_file_policy(session: Session, cache: PolicyCache, actor: Actor) -> bool:
    """Store the file policy as the active version when no version is stored yet (a new
    installation). Once one is, the file never replaces it: a different policy comes into
    force only as a proposed change a second person approves (app.ledger.changes), or
    whoever runs the server could weaken the policy alone by editing the file or
    POLICY_FILE and running init-db. Returns whether it stored the file policy."""
    with ledger_write(session):
        stored = session.execute(select(PolicyVersion.id).limit(1)).scalar_one_or_none()
        if stored is not None:
            return False
        row = PolicyVersion(version=cache.fallback.version, document=cache.fallback_text,
                            source="file")
        session.add(row)
        session.flush()
        audit.append(session, actor, "policy.registered", "policy_version", row.id,
                     {"version": row.version, "source": "file"}, sealed=[row])
    return True


def save_policy_version(session: Session, document: dict, actor: Actor) -> Policy:
    """Validate and store an edited policy document as the new active version."""
    try:
        policy = policy_from_mapping(document)
    except PolicyError as error:
        raise ValidationFailed({"policy": [str(error)]}) from None
    with ledger_write(session):
        clash = session.execute(
            select(PolicyVersion.id).where(PolicyVersion.version == policy.version)
        ).scalar_one_or_none()
        if clash is not None:
            raise ValidationFailed({"version": ["this version exists; choose a new version name"]})
        row = PolicyVersion(version=policy.version, document=tomli_w.dumps(document),
                            source="admin", created_by_id=actor.user_id)
        session.add(row)
        session.flush()
        audit.append(session, actor, "policy.changed", "policy_version", row.id,
                     {"version": policy.version, "cap": str(policy.cap),
                      "warning": str(policy.warning), "window_days": policy.window_days,
                      "cooling_off_days": policy.cooling_off_days, "outcomes": policy.outcomes},
                     sealed=[row])
    return policy

"""The relationship beyond money: interactions on a donor's timeline, staff tasks, and how
a donor agreed to be contacted.

None of this touches money or the policy's facts, but it is the organisation's record of
its dealings with people, so every write is audited like the rest: who, when, what kind.
The audit keeps no free text (summaries and notes are personal data that may have to be
erased; the chain is forever). Writes take the ledger lock only because the audit chain
is appended under it.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlmodel import Session

from app.db.locking import ledger_write
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.parties import merged_into
from models import Donor, Interaction, Task, User, utcnow
from models.schemas import ContactPreferences, InteractionCreate, TaskCreate

PREFERENCE_FIELDS = ("do_not_contact", "email_ok", "post_ok", "phone_ok")


def _live_donor(session: Session, donor_id: int, field: str = "donor_id") -> Donor:
    """The donor, refusing a missing one and a merged record (its survivor is the one to use)."""
    donor = session.get(Donor, donor_id)
    if donor is None:
        raise ValidationFailed({field: ["no such donor"]})
    survivor = merged_into(session, donor_id)
    if survivor is not None:
        raise ValidationFailed({field: [
            f"donor {donor_id} was merged into donor {survivor}; use that record"]})
    return donor


def _author(actor: Actor) -> int:
    if actor.user_id is None:
        # A command or Stripe has no place on a timeline or a to-do list.
        raise NotAllowed("only a staff user can record interactions and tasks")
    return actor.user_id


def record_interaction(session: Session, donor_id: int, data: InteractionCreate,
                       actor: Actor) -> Interaction:
    """Add a call, meeting, e-mail, event, letter or note to the donor's timeline."""
    author_id = _author(actor)
    with ledger_write(session):
        _live_donor(session, donor_id)
        item = Interaction(donor_id=donor_id, kind=data.kind, occurred_on=data.occurred_on,
                           summary=data.summary, note=data.note or None, author_id=author_id)
        session.add(item)
        session.flush()
        audit.append(session, actor, "interaction.recorded", "interaction", item.id,
                     {"donor_id": donor_id, "kind": data.kind, "occurred_on": data.occurred_on})
    return item


def create_task(session: Session, data: TaskCreate, actor: Actor) -> Task:
    """A task for a staff member (the requester, unless another is named), by a date."""
    creator_id = _author(actor)
    assignee_id = data.assignee_id if data.assignee_id is not None else creator_id
    with ledger_write(session):
        assignee = session.get(User, assignee_id)
        if assignee is None or not assignee.active:
            raise ValidationFailed({"assignee_id": ["no such active staff user"]})
        if data.donor_id is not None:
            _live_donor(session, data.donor_id)
        task = Task(title=data.title, due_on=data.due_on, assignee_id=assignee_id,
                    donor_id=data.donor_id, note=data.note or None, created_by_id=creator_id)
        session.add(task)
        session.flush()
        audit.append(session, actor, "task.created", "task", task.id,
                     {"assignee_id": assignee_id, "donor_id": data.donor_id,
                      "due_on": data.due_on})
    return task


def complete_task(session: Session, task_id: int, actor: Actor) -> Task:
    """Mark an open task done. Anyone who may write tasks may tick one off (a colleague
    covering for the assignee); the audit and the task say who did."""
    done_by = _author(actor)
    with ledger_write(session):
        task = session.get(Task, task_id)
        if task is None:
            raise NotFound("task", task_id)
        if task.status == "done":
            raise NotAllowed(f"task {task_id} is already done")
        task.status, task.done_at, task.done_by_id = "done", utcnow(), done_by
        session.flush()
        audit.append(session, actor, "task.done", "task", task.id, {})
    return task


def set_contact_preferences(session: Session, donor_id: int, data: ContactPreferences,
                            actor: Actor) -> Donor:
    """Record how the donor agreed to be contacted. Audited with before and after: whether
    someone asked not to be contacted, and when, is what a complaint turns on."""
    with ledger_write(session):
        donor = session.get(Donor, donor_id)
        if donor is None:
            raise NotFound("donor", donor_id)
        before = {f: getattr(donor, f) for f in PREFERENCE_FIELDS}
        after = {f: getattr(data, f) for f in PREFERENCE_FIELDS}
        if before != after:
            for name, value in after.items():
                setattr(donor, name, value)
            session.flush()
            audit.append(session, actor, "donor.contact_preferences", "donor", donor_id,
                         {"before": before, "after": after})
    return donor


def timeline(session: Session, donor_id: int, limit: int = 50,
             before_id: int | None = None) -> list[tuple[Interaction, str]]:
    """The donor's interactions, newest first, with each author's e-mail."""
    query = (select(Interaction, User.email).join(User, User.id == Interaction.author_id)
             .where(Interaction.donor_id == donor_id))
    if before_id is not None:
        query = query.where(Interaction.id < before_id)
    return [tuple(row) for row in session.execute(
        query.order_by(Interaction.occurred_on.desc(), Interaction.id.desc()).limit(limit))]


def tasks_of(session: Session, *, assignee_id: int | None = None, donor_id: int | None = None,
             status: str | None = "open", limit: int = 100) -> list[Task]:
    """Tasks by assignee and/or donor, soonest due first (done ones: latest done first)."""
    query = select(Task)
    if assignee_id is not None:
        query = query.where(Task.assignee_id == assignee_id)
    if donor_id is not None:
        query = query.where(Task.donor_id == donor_id)
    if status is not None:
        query = query.where(Task.status == status)
    order = ((Task.due_on, Task.id) if status == "open"
             else (Task.status.desc(), Task.due_on, Task.id))
    return list(session.execute(query.order_by(*order).limit(limit)).scalars())


def open_count(session: Session, assignee_id: int) -> int:
    return session.execute(select(func.count()).where(
        Task.assignee_id == assignee_id, Task.status == "open")).scalar_one()


def overdue_count(session: Session, assignee_id: int, today: date) -> int:
    return session.execute(select(func.count()).where(
        Task.assignee_id == assignee_id, Task.status == "open", Task.due_on < today)).scalar_one()

"""New ledger rows, built and inserted cheaply: the write half of the one door's hot path.

Every gift writes four rows (the gift, its attribution, its decision, an audit entry).
Through the usual ORM path each row cost two things that were most of the door's time:

- SQLModel's __init__ for a table model sets every field through SQLAlchemy's
  instrumented attributes and pydantic's __setattr__ (about 0.1 ms for a Gift);
- the unit of work's flush around each INSERT (about 0.3 ms beyond the INSERT itself).

So new() builds an object the way SQLAlchemy builds one it loads from a query (its
__dict__ filled directly, defaults from the model's fields), and insert() writes it with
one Core INSERT and attaches it to the session as a persistent object, exactly as if it
had been flushed and then loaded. Callers get ordinary ORM objects: they can be read,
changed and flushed like any other. Nothing here bypasses a rule: the ledger services
decide what is written; this module only writes it.

Only for plain rows: no relationships, no ORM insert events (the append-only guards on
decisions and audit entries listen for updates and deletes, which still go through the
ORM), and a single integer primary key named id that the database assigns.
"""

from __future__ import annotations

from functools import cache
from typing import TypeVar

from sqlalchemy import insert as sql_insert
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, SQLModel

T = TypeVar("T", bound=SQLModel)


@cache
def _defaults(cls: type[SQLModel]) -> tuple[dict, dict, frozenset]:
    """(constant defaults, default factories, required field names) of a table model."""
    constants, factories, required = {}, {}, set()
    for name, field in cls.model_fields.items():
        if field.default_factory is not None:
            factories[name] = field.default_factory
        elif field.is_required():
            required.add(name)
        else:
            constants[name] = field.default
    return constants, factories, frozenset(required)


def new(cls: type[T], **values) -> T:
    """A new, transient instance of a table model: the same object cls(**values) makes
    (defaults and default factories applied, no validation: table models have none),
    without the per-field attribute events."""
    constants, factories, required = _defaults(cls)
    unknown = values.keys() - cls.model_fields.keys()
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}")
    missing = required - values.keys()
    if missing:
        raise TypeError(f"{cls.__name__} needs {', '.join(sorted(missing))}")
    obj = cls._sa_class_manager.new_instance()  # what a query's loader does: no __init__
    state = obj.__dict__
    state.update(constants)
    for name, factory in factories.items():
        if name not in values:
            state[name] = factory()
    state.update(values)
    return obj


@cache
def _insert_statement(cls: type[SQLModel]):
    table = cls.__table__
    columns = tuple(c.key for c in table.columns if not c.primary_key)
    # Without explicit columns, the compiled INSERT names exactly the keys of each
    # parameter dict; it is built once per set of keys and cached by SQLAlchemy.
    return sql_insert(table), columns


def insert(session: Session, obj: T) -> T:
    """INSERT a new object (from new() or the model's constructor, its id unset) in one
    statement, in the session's transaction, and make it persistent in the session.

    The database assigns the id (SQLite: the row id; PostgreSQL: RETURNING id, which
    SQLAlchemy adds by itself). Errors (a unique or check constraint) propagate as they
    would from a flush; the caller's transaction handling rolls back.
    """
    statement, columns = _insert_statement(type(obj))
    state = obj.__dict__
    result = session.execute(statement, {key: state[key] for key in columns})
    state["id"] = result.inserted_primary_key[0]
    # Now it is a row in the database: attach it as persistent, with its current values
    # as the loaded state (no pending changes, nothing for a later flush to write).
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


def insert_many(session: Session, cls: type[SQLModel], rows: list[dict]) -> None:
    """INSERT rows that no caller needs as objects (one statement; executemany for several)."""
    if rows:
        session.execute(_insert_statement(cls)[0], rows)

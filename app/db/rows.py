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

import json
from functools import cache
from typing import TypeVar

import psycopg
from psycopg import sql as psycopg_sql
from sqlalchemy import JSON, func, inspect, select, text
from sqlalchemy import insert as sql_insert
from sqlalchemy.exc import DBAPIError
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
def _column_keys(cls: type[SQLModel]) -> tuple[str, ...]:
    """The attribute of each column of a table model's table, in the table's column order."""
    mapper = inspect(cls)
    return tuple(mapper.get_property_by_column(c).key for c in cls.__table__.columns)


def width(cls: type[SQLModel]) -> int:
    """How many columns a table model's rows have (what a select of the model reads)."""
    return len(_column_keys(cls))


def column_index(cls: type[SQLModel], key: str) -> int:
    """Where a column is among a table model's columns (from_columns' order)."""
    return _column_keys(cls).index(key)


def from_columns(cls: type[T], values) -> T:
    """An object of a table model from a row of its table's columns (in the table's order,
    as a select of the model run on the connection returns them), built as new() builds
    one and attached to no session: for facts read only, without the ORM's loading and
    identity-map work (the door reads its donor this way before the lock)."""
    obj = cls._sa_class_manager.new_instance()
    obj.__dict__.update(zip(_column_keys(cls), values, strict=True))
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
    # A Core INSERT of a Table: the session would add no flush or ORM handling to it, only
    # its per-statement overhead, so it runs on the session's connection.
    result = session.connection().execute(_insert_statement(type(obj))[0], values_of(obj))
    obj.__dict__["id"] = result.inserted_primary_key[0]
    # Now it is a row in the database: attach it as persistent, with its current values
    # as the loaded state (no pending changes, nothing for a later flush to write).
    make_transient_to_detached(obj)
    session.add(obj)
    # And, as a flush would, record it as new in this transaction (SQLAlchemy internals,
    # as in new()): a rollback then expunges it. Without this it stayed in the identity
    # map after a rollback, and SQLite, which hands out a rolled-back id again, made the
    # next insert of that class collide with it (tests/ledger/test_ledger_batch.py).
    session._transaction._new[inspect(obj)] = True
    return obj


def values_of(obj: SQLModel) -> dict:
    """The column values an INSERT of a new object writes (all but its id)."""
    state = obj.__dict__
    return {key: state[key] for key in _insert_statement(type(obj))[1]}


def insert_many(session: Session, cls: type[SQLModel], rows: list[dict]) -> None:
    """INSERT rows that no caller needs as objects (one statement; executemany for several)."""
    if rows:
        session.execute(_insert_statement(cls)[0], rows)


def insert_each(session: Session, cls: type[SQLModel], rows: list[dict]) -> list[int]:
    """INSERT rows one statement each (a gift's one or two attributions), returning their
    new ids in order: as cheap as insert_many for a single row, and the ids come back."""
    statement = _insert_statement(cls)[0]
    connection = session.connection()  # as in insert()
    return [connection.execute(statement, row).inserted_primary_key[0] for row in rows]


def bulk_insert(session: Session, cls: type[SQLModel], rows: list[dict], *,
                return_ids: bool = False) -> list[int]:
    """INSERT many rows (each with the same keys) in as few round trips as the database
    allows; with return_ids, their new ids in the order of `rows` (ascending), else [].

    The ids are chosen first and written with the rows, where a RETURNING per row would
    cost more than the writes: PostgreSQL takes them from the table's own sequence (one
    statement); SQLite continues from the largest id (see below). Then PostgreSQL writes
    the rows by COPY, which checks every constraint an INSERT does: row by row the same
    thousand gifts cost several times more (executemany sends a statement per row, and a
    multi-row INSERT ... RETURNING is parsed again on the client for every chunk, as
    psycopg caches only short statements). SQLite, in process, takes one executemany.
    """
    if not rows:
        return []
    table = cls.__table__
    if session.get_bind().dialect.name == "postgresql":
        ids = []
        if return_ids:
            ids = sorted(session.execute(_NEXT_IDS, {"table": table.name, "n": len(rows)})
                         .scalars())
            rows = [{**row, "id": new_id} for row, new_id in zip(rows, ids, strict=True)]
        _copy(session, table, rows)
        return ids
    ids = []
    if return_ids:
        # The ids SQLite itself would assign one by one (max(rowid) + 1; these tables are
        # not AUTOINCREMENT). Callers write under the ledger lock, which on SQLite is the
        # database's write lock (BEGIN IMMEDIATE), so no one else inserts meanwhile; were
        # one to, the primary key would refuse the clash rather than mix rows up.
        last = session.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
        ids = list(range(last + 1, last + 1 + len(rows)))
        rows = [{**row, "id": new_id} for row, new_id in zip(rows, ids, strict=True)]
    session.execute(sql_insert(table), rows)
    return ids


#: n new ids from a table's own sequence (looked up once, not once per id).
_NEXT_IDS = text("SELECT nextval(q.seq) FROM (SELECT pg_get_serial_sequence(:table, 'id')"
                 "::regclass AS seq) q, generate_series(1, :n)")


def _copy(session: Session, table, rows: list[dict]) -> None:
    """PostgreSQL COPY of rows into table, in the session's transaction. Values go as
    psycopg adapts them (dates, aware datetimes, booleans, None as NULL); JSON columns as
    the JSON text SQLAlchemy would have bound. Not through SQLAlchemy's column types: the
    ledger's datetimes are all aware UTC (models.utcnow), which is what UTCDateTime would
    have checked and stored."""
    columns = list(rows[0])
    as_json = {c.key for c in table.columns if isinstance(c.type, JSON)}
    # A None in a JSON column that stores None as SQL NULL (audit_entry.row_hashes) is NULL.
    null_json = {c.key for c in table.columns if isinstance(c.type, JSON) and c.type.none_as_null}
    statement = psycopg_sql.SQL("COPY {} ({}) FROM STDIN").format(
        psycopg_sql.Identifier(table.name),
        psycopg_sql.SQL(", ").join(psycopg_sql.Identifier(c) for c in columns))
    connection = session.connection()
    driver = connection.connection.driver_connection
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([
                    None if c in null_json and row[c] is None
                    else json.dumps(row[c]) if c in as_json else row[c] for c in columns])
    except psycopg.Error as error:
        # As SQLAlchemy would raise it for an INSERT (IntegrityError, DataError,
        # OperationalError...), so callers handle a COPY's failure like any other; and a
        # lost connection is invalidated, as SQLAlchemy does, not returned to the pool.
        dialect = connection.dialect
        lost = dialect.is_disconnect(error, driver, None)
        if lost:
            connection.invalidate(error)
        raise DBAPIError.instance(statement.as_string(driver), None, error, psycopg.Error,
                                  connection_invalidated=lost, dialect=dialect) from error

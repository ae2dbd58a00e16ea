"""Membership tests over many values, written the way each database takes them best.

`column IN (:v1, :v2, ...)` with hundreds of values is the portable form, and SQLite takes
it well. On PostgreSQL it is slow on the client: psycopg converts a statement's
placeholders on every execution and caches that work only for short statements, so an IN
list of 500 values cost about as much as the query itself, every time (seen in profiles
of the CSV import and the dashboard). There the values go as one array parameter instead:
`column = ANY(:values)`, which PostgreSQL answers with the same index scans.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ARRAY, ColumnElement, any_, literal
from sqlmodel import Session


def one_of(session: Session, column, values: Iterable) -> ColumnElement[bool]:
    """`column IN values` for this session's database (see the module docstring)."""
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(values, ARRAY(column.type)))
    return column.in_(values)

"""Alembic environment. `armslength init-db` passes the app's engine in
config.attributes; plain `alembic` runs use DATABASE_URL from the environment."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

import models

target_metadata = models.metadata


def _engine():
    engine = context.config.attributes.get("engine")
    if engine is not None:
        return engine
    url = os.environ.get("DATABASE_URL") or "sqlite:///instance/armslength.sqlite3"
    return create_engine(url)


def run_migrations_offline() -> None:
    context.configure(
        url=str(_engine().url),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    with _engine().connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

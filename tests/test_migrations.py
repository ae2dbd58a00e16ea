"""The Alembic migrations build exactly the schema the models describe.

Run on SQLite and, with TEST_DATABASE_URL set, on PostgreSQL: a model change
without its migration (or a migration that drifts from the models) fails here.
"""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

import models
from app.cli import MIGRATIONS
from tests.empty_db import BACKENDS, empty_database


@pytest.fixture(params=BACKENDS)
def empty_engine(request, tmp_path):
    with empty_database(request.param, tmp_path, "migrations") as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


def _config(engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def _schema_diff(engine) -> list[str]:
    """compare_metadata's differences, one readable line each ("add_table stripe_event")."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return [_describe(item) for item in compare_metadata(context, models.metadata)]


def _assert_schema_matches_models(engine) -> None:
    diff = _schema_diff(engine)
    assert diff == [], (
        "the schema the migrations build differs from the models; add a migration for:\n  "
        + "\n  ".join(diff)
    )


def _describe(item) -> str:
    if isinstance(item, list):  # modify_* operations on one column come grouped
        return "; ".join(_describe(part) for part in item)
    op, *args = item
    names = [a if isinstance(a, str) else getattr(a, "name", None) for a in args]
    return " ".join([op, *(str(n) for n in names if n)])


def test_one_head():
    heads = ScriptDirectory.from_config(_config(None)).get_heads()
    assert len(heads) == 1, f"migration history has several heads: {heads}"


def test_migrations_give_the_models_schema(empty_engine):
    command.upgrade(_config(empty_engine), "head")
    _assert_schema_matches_models(empty_engine)


def test_upgrade_is_idempotent_and_downgrade_reverses_it(empty_engine):
    engine = empty_engine
    config = _config(engine)
    command.upgrade(config, "head")
    command.upgrade(config, "head")  # nothing left to do
    command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    _assert_schema_matches_models(engine)

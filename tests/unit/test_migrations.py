"""Alembic migrations on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import pytest

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text

from visualizador_emtp import migrate
from visualizador_emtp.db import Database
from visualizador_emtp.models import Base
from visualizador_emtp.users import service
from visualizador_emtp.users.models import User


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'users.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database = Database(url)
    yield database
    database.dispose()


def test_single_head():
    heads = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1


def test_empty_to_head_and_models_match(db):
    assert migrate.current_revision(db.engine) is None
    migrate.upgrade(db.engine, db.url)
    assert migrate.is_at_head(db.engine)
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "login_attempts", "user_sessions", "alembic_version"} <= tables
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], diff


def test_downgrade_upgrade_round_trip_keeps_rows(db):
    migrate.upgrade(db.engine, db.url)
    service.create_user(db, "ana", "Clave-segura-1", "admin", "Ana Pérez", "ana@mineduc.cl", bcrypt_rounds=4)
    service.create_user(db, "Luis", "Clave-segura-2", "analista", bcrypt_rounds=4)
    head = migrate.head_revision()
    previous = ScriptDirectory.from_config(migrate.alembic_config(db.url)).get_revision(head).down_revision
    assert previous is not None
    migrate.downgrade(db.engine, db.url, previous)
    assert migrate.current_revision(db.engine) == previous
    migrate.upgrade(db.engine, db.url)
    assert migrate.is_at_head(db.engine)
    with db.session() as s:
        names = sorted(s.scalars(select(User.username)).all())
    assert names == ["Luis", "ana"]


def test_username_unique_case_insensitive(db):
    migrate.upgrade(db.engine, db.url)
    service.create_user(db, "Maria", "Clave-segura-1", "analista", bcrypt_rounds=4)
    with pytest.raises(service.UserError, match="Ya existe"):
        service.create_user(db, "MARIA", "Clave-segura-1", "analista", bcrypt_rounds=4)
    # the database itself enforces it too (not only the service)
    with pytest.raises(Exception):
        with db.session() as s:
            s.add(User(username="maria", password_hash="x", role="analista", full_name="", email="",
                       is_active=True, failed_logins=0))
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 1


def test_sqlite_pragmas(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'u.db'}", busy_timeout_ms=7000)
    with database.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 7000
    database.dispose()

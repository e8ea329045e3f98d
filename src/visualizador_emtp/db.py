"""Database engine and sessions for users.db (SQLite or PostgreSQL).

SQLite runs in WAL mode with a busy timeout, and every transaction starts with
BEGIN IMMEDIATE: a transaction never has to upgrade a read lock to a write lock,
which is what surfaces "database is locked" with several gunicorn workers.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

from sqlalchemy import DateTime, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator


class Base(DeclarativeBase):
    pass


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive text)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def make_engine(url: str, busy_timeout_ms: int = 15000) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            # Let SQLAlchemy (not pysqlite) emit BEGIN, so we can make it IMMEDIATE.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


class Database:
    """An engine plus a session factory; one per process (created lazily after fork)."""

    def __init__(self, url: str, busy_timeout_ms: int = 15000):
        self.url = url
        self.busy_timeout_ms = busy_timeout_ms
        self._engine: Engine | None = None
        self._factory: sessionmaker | None = None
        self._file_id = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.url, self.busy_timeout_ms)
            self._factory = sessionmaker(self._engine, expire_on_commit=False)
            self._file_id = self._sqlite_file_id()
        return self._engine

    def _sqlite_file_id(self):
        path = self.sqlite_path
        if path is None:
            return None
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino)

    @property
    def sqlite_path(self) -> str | None:
        if not self.url.startswith("sqlite:///"):
            return None
        return self.url[len("sqlite:///"):] or None

    def file_problem(self) -> str | None:
        """For SQLite: the file this process opened was deleted or replaced underneath it."""
        if self.sqlite_path is None or self._engine is None:
            return None
        if not os.path.exists(self.sqlite_path):
            return f"el archivo {self.sqlite_path} ya no existe"
        if self._file_id is not None and self._sqlite_file_id() != self._file_id:
            return f"el archivo {self.sqlite_path} fue reemplazado mientras la aplicación corría: reinicie el servicio"
        return None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on error."""
        self.engine
        s = self._factory()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

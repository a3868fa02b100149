"""Engines and sessions: SQLite (default, WAL, BEGIN IMMEDIATE for writers) or PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from loyalty.config import get_settings

T = TypeVar("T")

# PostgreSQL's serialization failure and deadlock: the transaction did nothing and may be retried.
RETRYABLE_SQLSTATES = {"40001", "40P01"}


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # 64 MB page cache: bulk imports update a dozen indexes per sale (default is 2 MB).
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A transaction that reads and then writes under a deferred BEGIN fails with SQLITE_BUSY
        # at once, ignoring busy_timeout; writers take the write lock up front instead.
        if conn.get_execution_options().get("sqlite_read_only"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=pool_size, max_overflow=pool_size)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    return make_engine(settings.database_url, echo=settings.log_sql)


def read_only_engine(engine: Engine) -> Engine:
    """The same pool, but SQLite transactions start deferred so readers never queue behind writers."""
    return engine.execution_options(sqlite_read_only=True)


def database_key(session: Session) -> str:
    """Identifies the database a session talks to, for per-database caches."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return engine.url.render_as_string(hide_password=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A unit of work for CLI commands and jobs: commit on success, roll back on error."""
    session = session_factory(engine or get_engine())()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate in RETRYABLE_SQLSTATES:
            return True
        # SQLite reports a busy database only if busy_timeout ran out; trying again is safe.
        if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
            return True
    return False


def run_in_transaction(engine: Engine, work: Callable[[Session], T], *, attempts: int = 5) -> T:
    """Runs `work` in its own transaction and commits, retrying deadlocks and serialization failures."""
    factory = session_factory(engine)
    for attempt in range(attempts):
        session = factory()
        try:
            result = work(session)
            session.commit()
            return result
        except DBAPIError as exc:
            session.rollback()
            if attempt + 1 < attempts and is_retryable(exc):
                continue
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
    raise AssertionError("unreachable")

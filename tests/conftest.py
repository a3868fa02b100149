"""Every test gets a clean database: SQLite always, PostgreSQL too when LOYALTY_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from loyalty.app import create_app
from loyalty.auth.service import clear_cache as clear_key_cache
from loyalty.config import get_settings
from loyalty.db import get_engine, make_engine, read_only_engine, session_factory
from loyalty.migrations.runner import upgrade_to_head
from loyalty.models import Base
from loyalty.programs.service import ProgramCache
from loyalty.stores import service as stores_service
from loyalty.transactions import service as transactions_service

POSTGRES_URL = os.environ.get("LOYALTY_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


def _pg_base_url() -> str:
    assert POSTGRES_URL
    url = POSTGRES_URL
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _admin_engine() -> Engine:
    return make_engine(_pg_base_url()).execution_options(isolation_level="AUTOCOMMIT")


def _private_database_name() -> str:
    """A database of this run's own: two runs on one server (two developers, a developer and
    a helper, CI) must never truncate each other's data."""
    from sqlalchemy.engine import make_url

    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", uuid.uuid4().hex)[:10]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{make_url(_pg_base_url()).database}_{run}_{worker}"


@pytest.fixture(scope="session")
def postgres_migrated() -> Iterator[str]:
    from sqlalchemy.engine import make_url

    name = _private_database_name()
    try:
        admin = _admin_engine()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - the message is the point
        pytest.exit(f"LOYALTY_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {exc}", returncode=3)
    url = make_url(_pg_base_url()).set(database=name).render_as_string(hide_password=False)
    upgrade_to_head(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


def _clear_caches() -> None:
    ProgramCache.clear()
    clear_key_cache()
    stores_service._kinds.clear()
    transactions_service._at_once_hints.clear()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    _clear_caches()
    if request.param == "sqlite":
        path = tmp_path / "loyalty.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_migrated")
        engine = make_engine(url)
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
        yield url
    _clear_caches()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=40)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session for arranging and checking; tests commit what the code under test should see.

    It begins deferred on SQLite, like the API's reads, so a read left open never holds the
    write lock that the code under test needs.
    """
    session = session_factory(read_only_engine(engine))()
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def cli_db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test's database as the CLI's LOYALTY_DATABASE_URL, with settings and engine caches fresh."""
    monkeypatch.setenv("LOYALTY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield database_url
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()

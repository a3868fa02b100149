"""Alembic environment: migrates the database named by LOYALTY_DATABASE_URL (or the caller's)."""

from __future__ import annotations

from alembic import context

from loyalty.config import get_settings
from loyalty.db import make_engine
from loyalty.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_migrations() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()

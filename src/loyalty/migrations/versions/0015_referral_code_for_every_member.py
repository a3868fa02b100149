"""every member has a referral code: give one to each member enrolled before codes were written
at enrolment (they used to be created the first time GET /v1/customers/{id}/referral asked)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 09:40:00
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

# As in loyalty.referrals.service at the time of writing (a migration keeps its own copy).
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 8
BATCH = 10_000

codes = sa.table("referral_codes", sa.column("customer_id", sa.BigInteger), sa.column("code", sa.String),
                 sa.column("created_at", sa.DateTime(timezone=True)),
                 sa.column("advocate_since", sa.DateTime(timezone=True)))
customers = sa.table("customers", sa.column("id", sa.BigInteger))


def upgrade() -> None:
    connection = op.get_bind()
    now = datetime.now(UTC)
    if connection.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # the app's SQLite datetime type stores naive UTC
    taken = set(connection.scalars(sa.select(codes.c.code)))
    while True:
        missing = list(connection.scalars(
            sa.select(customers.c.id).where(~sa.exists().where(codes.c.customer_id == customers.c.id))
            .order_by(customers.c.id).limit(BATCH)))
        if not missing:
            return
        rows = []
        for customer_id in missing:
            code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
            while code in taken:
                code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
            taken.add(code)
            rows.append({"customer_id": customer_id, "code": code, "created_at": now, "advocate_since": None})
        connection.execute(codes.insert(), rows)


def downgrade() -> None:
    # Codes given to members who never shared them are indistinguishable from shared ones: kept.
    pass

"""staff web login: a readonly staff role, password hashes and login lockout on staff_members

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import loyalty.models.base

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

OLD_ROLES = "role IN ('agent', 'manager', 'admin')"
NEW_ROLES = "role IN ('agent', 'manager', 'admin', 'readonly')"


def _set_role_check(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        # SQLite cannot alter a CHECK constraint, and rebuilding staff_members (batch mode) fails on
        # existing data: the tables that reference it make the DROP TABLE a foreign-key violation
        # (PRAGMA foreign_keys cannot be turned off inside the migration's transaction). Widening a
        # CHECK changes nothing stored, so the schema text is edited in place, the procedure SQLite's
        # documentation gives for constraint changes ("Making Other Kinds Of Table Schema Changes").
        version = bind.exec_driver_sql('PRAGMA schema_version').scalar_one()
        bind.exec_driver_sql('PRAGMA writable_schema=ON')
        bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'staff_members'",
            (old, new))
        bind.exec_driver_sql(f'PRAGMA schema_version={int(version) + 1}')
        bind.exec_driver_sql('PRAGMA writable_schema=OFF')
    else:
        op.drop_constraint(op.f('ck_staff_members_role'), 'staff_members', type_='check')
        op.create_check_constraint(op.f('ck_staff_members_role'), 'staff_members', new)


def upgrade() -> None:
    _set_role_check(OLD_ROLES, NEW_ROLES)
    op.add_column('staff_members', sa.Column('password_hash', sa.String(length=200), nullable=True))
    op.add_column('staff_members', sa.Column('password_set_at', loyalty.models.base.UTCDateTime(timezone=True),
                                             nullable=True))
    op.add_column('staff_members', sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False))
    op.add_column('staff_members', sa.Column('locked_until', loyalty.models.base.UTCDateTime(timezone=True),
                                             nullable=True))


def downgrade() -> None:
    op.execute("UPDATE staff_members SET role = 'agent', active = false WHERE role = 'readonly'")
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would drop a table others reference.
    for column in ('locked_until', 'failed_logins', 'password_set_at', 'password_hash'):
        op.execute(f'ALTER TABLE staff_members DROP COLUMN {column}')
    _set_role_check(NEW_ROLES, OLD_ROLES)

"""survey e-mail delivery state on invitations, resolution breaches on tickets

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 14:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import loyalty.models.base

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns (and one with a server default) only: existing invitations count as not sent
    # by e-mail, which is true, and are picked up by the sender only while their link is valid.
    with op.batch_alter_table('survey_invitations') as batch:
        batch.add_column(sa.Column('sent_at', loyalty.models.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('send_attempts', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('last_error', sa.String(length=300), nullable=True))
        batch.add_column(sa.Column('sending_until', loyalty.models.base.UTCDateTime(timezone=True), nullable=True))
    op.create_index('ix_survey_invitations_unsent', 'survey_invitations', ['sent_at', 'send_after'], unique=False)
    with op.batch_alter_table('tickets') as batch:
        batch.add_column(sa.Column('resolution_breached_at', loyalty.models.base.UTCDateTime(timezone=True),
                                   nullable=True))
    op.create_index('ix_tickets_resolution_due', 'tickets', ['resolution_due_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_tickets_resolution_due', table_name='tickets')
    with op.batch_alter_table('tickets') as batch:
        batch.drop_column('resolution_breached_at')
    op.drop_index('ix_survey_invitations_unsent', table_name='survey_invitations')
    with op.batch_alter_table('survey_invitations') as batch:
        batch.drop_column('sending_until')
        batch.drop_column('last_error')
        batch.drop_column('send_attempts')
        batch.drop_column('sent_at')

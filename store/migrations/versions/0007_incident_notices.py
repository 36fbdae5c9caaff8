"""Incidents: what each webhook route was last told of each incident (alerts/notifier.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'incident_notices',
        sa.Column('incident_id', sa.String(length=40), nullable=False),
        sa.Column('route', sa.String(length=100), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=64), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=True),
        sa.Column('opened_at', sa.Float(), nullable=False),
        sa.Column('last_sent_at', sa.Float(), nullable=True),
        sa.Column('next_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('incident_id', 'route'),
    )
    op.create_index('ix_incident_notices_next', 'incident_notices', ['next_at'])


def downgrade() -> None:
    op.drop_index('ix_incident_notices_next', table_name='incident_notices')
    op.drop_table('incident_notices')

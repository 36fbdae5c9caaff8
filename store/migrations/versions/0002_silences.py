"""Silences, and the keys webhook outbox rows are silenced by.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('silences',
                    sa.Column('id', sa.String(length=32), nullable=False),
                    sa.Column('key_type', sa.String(length=8), nullable=True),
                    sa.Column('key', sa.String(length=100), nullable=True),
                    sa.Column('severity', sa.String(length=16), nullable=True),
                    sa.Column('starts_at', sa.Float(), nullable=False),
                    sa.Column('ends_at', sa.Float(), nullable=False),
                    sa.Column('created_by', sa.String(length=100), nullable=False),
                    sa.Column('comment', sa.Text(), nullable=False),
                    sa.Column('created_at', sa.Float(), nullable=False),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_silences_ends', 'silences', ['ends_at'], unique=False)
    with op.batch_alter_table('webhook_outbox') as batch:  # batch: SQLite cannot ALTER much in place
        batch.add_column(sa.Column('key_type', sa.String(length=8), nullable=True))
        batch.add_column(sa.Column('key', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('severity', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhook_outbox') as batch:
        batch.drop_column('severity')
        batch.drop_column('key')
        batch.drop_column('key_type')
    op.drop_index('ix_silences_ends', table_name='silences')
    op.drop_table('silences')

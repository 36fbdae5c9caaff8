"""The dashboard's users and their roles.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('users',
                    sa.Column('name', sa.String(length=100), nullable=False),
                    sa.Column('role', sa.String(length=16), nullable=False),
                    sa.Column('password_hash', sa.String(length=300), nullable=True),
                    sa.Column('disabled', sa.Boolean(), nullable=False),
                    sa.Column('time_zone', sa.String(length=64), nullable=True),
                    sa.Column('created_by', sa.String(length=100), nullable=False),
                    sa.Column('created_at', sa.Float(), nullable=False),
                    sa.PrimaryKeyConstraint('name'))


def downgrade() -> None:
    op.drop_table('users')

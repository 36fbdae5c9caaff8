"""Corrections: each scored item's revision, and the earlier revisions of corrected items.

The same id sent again with changed content is a new revision (stream/core/revisions.py): the
news row holds the latest and its number, ``news_revisions`` what each earlier one said and how
it was scored. Nullable, so rows written before revisions stay valid (revision 1).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('scored_news') as batch:
        batch.add_column(sa.Column('revision', sa.Integer(), nullable=True))
    op.create_table(
        'news_revisions',
        sa.Column('id', sa.String(length=200), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('headline', sa.Text(), nullable=False),
        sa.Column('source', sa.String(length=200), nullable=True),
        sa.Column('url', sa.Text(), nullable=True),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('tickers', sa.Text(), nullable=False),
        sa.Column('topic', sa.String(length=64), nullable=False),
        sa.Column('sentiment', sa.String(length=16), nullable=False),
        sa.Column('sentiment_score', sa.Float(), nullable=False),
        sa.Column('model_version', sa.String(length=100), nullable=False),
        sa.Column('scored_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', 'revision'),
    )


def downgrade() -> None:
    op.drop_table('news_revisions')
    with op.batch_alter_table('scored_news') as batch:
        batch.drop_column('revision')

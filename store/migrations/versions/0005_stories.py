"""Stories and languages: each scored item's story, its place in it, its language and whether
its sentiment was scored; distinct stories and unscored items per trend window.

Nullable, so rows written before stories (and by a release that does not know them) stay valid:
the dashboard shows such an item as a story of its own.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('scored_news') as batch:
        batch.add_column(sa.Column('story_id', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('story_copies', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('story_sources', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('lang', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('sentiment_status', sa.String(length=24), nullable=True))
    op.create_index('ix_scored_news_story', 'scored_news', ['story_id', 'published_at'], unique=False)
    with op.batch_alter_table('trends') as batch:
        batch.add_column(sa.Column('stories', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('negative_stories', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('unscored', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('trends') as batch:
        batch.drop_column('unscored')
        batch.drop_column('negative_stories')
        batch.drop_column('stories')
    op.drop_index('ix_scored_news_story', table_name='scored_news')
    with op.batch_alter_table('scored_news') as batch:
        batch.drop_column('sentiment_status')
        batch.drop_column('lang')
        batch.drop_column('story_sources')
        batch.drop_column('story_copies')
        batch.drop_column('story_id')

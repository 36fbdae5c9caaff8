"""Half-hour sums of the trends per key, for the dashboard's long ranges; filled from the trends.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BUCKET_S = 1800  # store/schema.py's BUCKET_S when this revision was written


def upgrade() -> None:
    op.create_table('trend_buckets',
                    sa.Column('key_type', sa.String(length=8), nullable=False),
                    sa.Column('key', sa.String(length=100), nullable=False),
                    sa.Column('bucket_ts', sa.BigInteger(), nullable=False),
                    sa.Column('count', sa.Integer(), nullable=False),
                    sa.Column('negative', sa.Integer(), nullable=False),
                    sa.Column('score_sum', sa.Float(), nullable=False),
                    sa.PrimaryKeyConstraint('key_type', 'key', 'bucket_ts'))
    op.create_index('ix_trend_buckets_type_ts', 'trend_buckets',
                    ['key_type', 'bucket_ts', 'key', 'count', 'negative', 'score_sum'], unique=False)
    # a deployment upgraded with trends already stored: its long-range charts must show them at once
    op.execute(f"INSERT INTO trend_buckets (key_type, key, bucket_ts, count, negative, score_sum) "
               f"SELECT key_type, key, (window_ts / {BUCKET_S}) * {BUCKET_S}, SUM(count), SUM(negative), "
               f"SUM(mean_score * count) FROM trends GROUP BY key_type, key, (window_ts / {BUCKET_S}) * {BUCKET_S}")


def downgrade() -> None:
    op.drop_index('ix_trend_buckets_type_ts', table_name='trend_buckets')
    op.drop_table('trend_buckets')

"""the feed of video events (deletions) the cleaning services follow

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "video_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("video_id", sa.String(length=63), nullable=False),
        sa.Column("owner", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("create_time_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("video_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_video_events_create_time_us"), ["create_time_us"], unique=False
        )


def downgrade() -> None:
    op.drop_table("video_events")

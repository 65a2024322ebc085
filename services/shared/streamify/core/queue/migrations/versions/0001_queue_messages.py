"""queue messages

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("queue", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("visible_at_us", sa.BigInteger(), nullable=False),
        sa.Column("lease", sa.String(length=32), nullable=True),
        sa.Column("dead_at_us", sa.BigInteger(), nullable=True),
        sa.Column("create_time_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("queue_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_queue_messages_ready", ["queue", "visible_at_us", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("queue_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_messages_ready")

    op.drop_table("queue_messages")

"""outbox rows are claimed by one relay at a time

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upload_outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("claimed_by", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("claimed_until_us", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("upload_outbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_until_us")
        batch_op.drop_column("claimed_by")

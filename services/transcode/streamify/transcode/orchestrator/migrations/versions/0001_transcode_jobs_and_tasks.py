"""transcode jobs and tasks

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
        "transcode_jobs",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("owner", sa.String(length=63), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=False),
        sa.Column("source_bucket", sa.String(length=63), nullable=False),
        sa.Column("source_key", sa.String(length=1024), nullable=False),
        sa.Column("source_size", sa.BigInteger(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("total_tasks", sa.Integer(), nullable=False),
        sa.Column("completed_tasks", sa.Integer(), nullable=False),
        sa.Column("published_run", sa.Integer(), nullable=False),
        sa.Column("first_playable_us", sa.BigInteger(), nullable=False),
        sa.Column("notified_state", sa.Integer(), nullable=False),
        sa.Column("retry_request_id", sa.String(length=64), nullable=False),
        sa.Column("cancel_request_id", sa.String(length=64), nullable=False),
        sa.Column("create_time_us", sa.BigInteger(), nullable=False),
        sa.Column("update_time_us", sa.BigInteger(), nullable=False),
        sa.Column("end_time_us", sa.BigInteger(), nullable=False),
        sa.Column("deadline_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("transcode_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_transcode_jobs_created", ["create_time_us", "id"], unique=False)
        batch_op.create_index(
            "ix_transcode_jobs_owner_created", ["owner", "create_time_us", "id"], unique=False
        )
        batch_op.create_index(
            "ix_transcode_jobs_state_created", ["state", "create_time_us", "id"], unique=False
        )

    op.create_table(
        "transcode_tasks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(length=128), nullable=False),
        sa.Column("lease_id", sa.String(length=32), nullable=False),
        sa.Column("lease_expire_us", sa.BigInteger(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("spec", sa.LargeBinary(), nullable=False),
        sa.Column("result", sa.LargeBinary(), nullable=False),
        sa.Column("create_time_us", sa.BigInteger(), nullable=False),
        sa.Column("update_time_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "name", name="uq_transcode_tasks_job_name"),
    )
    with op.batch_alter_table("transcode_tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_transcode_tasks_state_kind", ["state", "kind", "id"], unique=False
        )
        batch_op.create_index(
            "ix_transcode_tasks_state_lease", ["state", "lease_expire_us"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("transcode_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_transcode_tasks_state_lease")
        batch_op.drop_index("ix_transcode_tasks_state_kind")

    op.drop_table("transcode_tasks")
    with op.batch_alter_table("transcode_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_transcode_jobs_state_created")
        batch_op.drop_index("ix_transcode_jobs_owner_created")
        batch_op.drop_index("ix_transcode_jobs_created")

    op.drop_table("transcode_jobs")

"""Export jobs: export_job (bulk exports run by the app's background runner).

Revision ID: 0002_export_job
Revises: 0001
Create Date: 2026-11-27 14:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_export_job"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "'queued', 'running', 'completed', 'failed', 'cancelled'"


def upgrade() -> None:
    """Create export_job."""
    op.create_table(
        "export_job",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("patient", sa.String(length=400), nullable=True),
        sa.Column("request_json", sa.Text(), nullable=False),
        sa.Column("request_url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.String(length=400), nullable=True),
        sa.Column("manifest_json", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("runner_id", sa.String(length=64), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_export_job_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_job")),
    )
    with op.batch_alter_table("export_job", schema=None) as batch_op:
        batch_op.create_index(
            "ix_export_job_status_heartbeat_at", ["status", "heartbeat_at"], unique=False
        )


def downgrade() -> None:
    """Drop export_job."""
    with op.batch_alter_table("export_job", schema=None) as batch_op:
        batch_op.drop_index("ix_export_job_status_heartbeat_at")
    op.drop_table("export_job")

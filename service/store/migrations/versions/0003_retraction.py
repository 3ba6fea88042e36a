"""Retraction: ledger_entry.retract_requested (an app deleted the record).

Revision ID: 0003_retraction
Revises: 0002_export_job
Create Date: 2026-11-27 14:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_retraction"
down_revision: str | Sequence[str] | None = "0002_export_job"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ledger_entry.retract_requested (false for every existing row)."""
    with op.batch_alter_table("ledger_entry") as batch:
        batch.add_column(
            sa.Column("retract_requested", sa.Boolean(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    """Drop ledger_entry.retract_requested."""
    with op.batch_alter_table("ledger_entry") as batch:
        batch.drop_column("retract_requested")

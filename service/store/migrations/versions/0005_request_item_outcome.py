"""Delivery outcomes per request: sync_request_item.outcome.

Revision ID: 0005_request_item_outcome
Revises: 0004_patient_key
Create Date: 2026-12-01 06:50:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_request_item_outcome"
down_revision: str | Sequence[str] | None = "0004_patient_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add sync_request_item.outcome (unknown, NULL, for requests answered before)."""
    with op.batch_alter_table("sync_request_item") as batch:
        batch.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))


def downgrade() -> None:
    """Drop sync_request_item.outcome."""
    with op.batch_alter_table("sync_request_item") as batch:
        batch.drop_column("outcome")

"""Patient isolation: the patient is part of the ledger's key; request items carry it.

Revision ID: 0004_patient_key
Revises: 0003_retraction
Create Date: 2026-12-01 07:20:00

ledger_entry.patient_scope is "" for every existing row: those records keep the identifiers
(and so the server ids) they were pushed with, and the next push of the same record by the
same patient finds its row and updates in place: nothing is duplicated or orphaned. Only
records first sent after this revision by a patient-bound caller get per-patient identifiers.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision: str = "0004_patient_key"
down_revision: str | Sequence[str] | None = "0003_retraction"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Tables whose rows reference ledger_entry ON DELETE CASCADE.
CHILDREN = ("ledger_resource", "sync_request_item")


@contextmanager
def _children_kept() -> Iterator[None]:
    """Keep the rows that reference ledger_entry while SQLite copies that table.

    SQLite changes a unique constraint only by copying the table and dropping the old one, and
    with foreign keys on (our engines turn them on, and a transaction cannot turn them off)
    the drop cascades: every resource and request item would go, orphaning what is on the
    server. PostgreSQL alters in place.
    """
    if op.get_bind().dialect.name != "sqlite":
        yield
        return
    for table in CHILDREN:
        op.execute(f"CREATE TEMP TABLE kept_{table} AS SELECT * FROM {table}")
    yield
    for table in CHILDREN:
        op.execute(f"DELETE FROM {table}")
        op.execute(f"INSERT INTO {table} SELECT * FROM kept_{table}")
        op.execute(f"DROP TABLE kept_{table}")


def upgrade() -> None:
    """Key ledger_entry by id space and by patient; store each request item's patient."""
    with _children_kept(), op.batch_alter_table("ledger_entry") as batch:
        batch.add_column(
            sa.Column("patient_scope", sa.String(length=400), nullable=False, server_default="")
        )
        batch.drop_constraint("uq_ledger_entry_namespace_kind_source_id", type_="unique")
        batch.create_unique_constraint(
            "uq_ledger_entry_namespace_patient_scope_kind_source_id",
            ["namespace", "patient_scope", "kind", "source_id"],
        )
        batch.create_unique_constraint(
            "uq_ledger_entry_namespace_kind_source_id_patient_key",
            ["namespace", "kind", "source_id", "patient_key"],
        )
    with op.batch_alter_table("sync_request_item") as batch:
        batch.add_column(sa.Column("patient_key", sa.String(length=400), nullable=True))
    # Existing items: the entry's patient (accept() replaced it on a takeover, so this is the
    # patient the entry has now; items of a taken-over entry show to that patient only).
    op.execute(
        "UPDATE sync_request_item SET patient_key = "
        "(SELECT ledger_entry.patient_key FROM ledger_entry "
        "WHERE ledger_entry.id = sync_request_item.ledger_id)"
    )
    with op.batch_alter_table("sync_request_item") as batch:
        batch.alter_column("patient_key", existing_type=sa.String(length=400), nullable=False)


def downgrade() -> None:
    """Back to one id space per namespace (fails if two patients now share a record id)."""
    with op.batch_alter_table("sync_request_item") as batch:
        batch.drop_column("patient_key")
    with _children_kept(), op.batch_alter_table("ledger_entry") as batch:
        batch.drop_constraint(
            "uq_ledger_entry_namespace_kind_source_id_patient_key", type_="unique"
        )
        batch.drop_constraint(
            "uq_ledger_entry_namespace_patient_scope_kind_source_id", type_="unique"
        )
        batch.create_unique_constraint(
            "uq_ledger_entry_namespace_kind_source_id", ["namespace", "kind", "source_id"]
        )
        batch.drop_column("patient_scope")

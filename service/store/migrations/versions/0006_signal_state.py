"""Stored signals: signal_state (each patient's episodes per app and id space) and
signal_input (when each record happened, so evaluation reads a window, not the whole history).

Revision ID: 0006_signal_state
Revises: 0005_request_item_outcome
Create Date: 2026-12-01 11:05:00

Existing records get their time in signal_input (from the stored JSON: a diary entry's
recorded_at, an infusion's start), and every patient's app and id space a stale signal_state
row (fingerprint ""), so the first reader or accepted record evaluates its whole history.
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006_signal_state"
down_revision: str | Sequence[str] | None = "0005_request_item_outcome"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME_FIELD = {"diary-entry": "recorded_at", "infusion": "start"}
CHUNK = 500


def _time(kind: str, record_json: str, sqlite: bool) -> datetime | None:
    try:
        value = json.loads(record_json).get(TIME_FIELD.get(kind, ""))
        at = datetime.fromisoformat(value).astimezone(UTC)
    except (TypeError, ValueError, AttributeError):
        return None  # not a record we can place in time: evaluated with the whole history
    return at.replace(tzinfo=None) if sqlite else at


def upgrade() -> None:
    """Create the two tables and fill them from the ledger."""
    op.create_table(
        "signal_input",
        sa.Column("patient_key", sa.String(length=400), nullable=False),
        sa.Column("namespace", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "patient_key", "namespace", "kind", "source_id", name=op.f("pk_signal_input")
        ),
    )
    op.create_index(
        "ix_signal_input_window", "signal_input", ["patient_key", "namespace", "at"], unique=False
    )
    op.create_table(
        "signal_state",
        sa.Column("patient_key", sa.String(length=400), nullable=False),
        sa.Column("namespace", sa.String(length=200), nullable=False),
        sa.Column("patient_scope", sa.String(length=400), nullable=False),
        sa.Column("rules_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("signals_json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "patient_key", "namespace", "patient_scope", name=op.f("pk_signal_state")
        ),
    )
    _fill()


def _fill() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    now = datetime.now(UTC)
    ledger = sa.table(
        "ledger_entry",
        sa.column("patient_key", sa.String),
        sa.column("namespace", sa.String),
        sa.column("patient_scope", sa.String),
        sa.column("kind", sa.String),
        sa.column("source_id", sa.String),
        sa.column("record_json", sa.Text),
    )
    inputs = sa.table(
        "signal_input",
        sa.column("patient_key", sa.String),
        sa.column("namespace", sa.String),
        sa.column("kind", sa.String),
        sa.column("source_id", sa.String),
        sa.column("at", sa.DateTime(timezone=True)),
    )
    states = sa.table(
        "signal_state",
        sa.column("patient_key", sa.String),
        sa.column("namespace", sa.String),
        sa.column("patient_scope", sa.String),
        sa.column("rules_fingerprint", sa.String),
        sa.column("signals_json", sa.Text),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    sources: set[tuple[str, str, str]] = set()
    rows: list[dict[str, Any]] = []
    result = bind.execute(
        sa.select(
            ledger.c.patient_key,
            ledger.c.namespace,
            ledger.c.patient_scope,
            ledger.c.kind,
            ledger.c.source_id,
            ledger.c.record_json,
        )
    )
    for patient_key, namespace, scope, kind, source_id, record_json in result:
        sources.add((patient_key, namespace, scope))
        at = _time(kind, record_json, sqlite)
        if at is not None:
            rows.append(
                {
                    "patient_key": patient_key,
                    "namespace": namespace,
                    "kind": kind,
                    "source_id": source_id,
                    "at": at,
                }
            )
    for start in range(0, len(rows), CHUNK):
        bind.execute(inputs.insert(), rows[start : start + CHUNK])
    stale = [
        {
            "patient_key": patient_key,
            "namespace": namespace,
            "patient_scope": scope,
            "rules_fingerprint": "",
            "signals_json": "{}",
            "updated_at": now.replace(tzinfo=None) if sqlite else now,
        }
        for patient_key, namespace, scope in sorted(sources)
    ]
    for start in range(0, len(stale), CHUNK):
        bind.execute(states.insert(), stale[start : start + CHUNK])


def downgrade() -> None:
    """Drop the stored signals (they are evaluated again from the ledger)."""
    op.drop_table("signal_state")
    op.drop_index("ix_signal_input_window", table_name="signal_input")
    op.drop_table("signal_input")

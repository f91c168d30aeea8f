"""Store credit amounts and balances as 64-bit integers

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

PostgreSQL's INTEGER holds up to about 2.1 billion, less than the largest balance the ledger
allows (10^12). SQLite integers are 64-bit already; batch mode rebuilds its tables anyway.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("workspace", "balance"), ("ledger_entry", "amount"), ("ledger_entry", "balance_after"))


def upgrade() -> None:
    for table, column in COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    for table, column in COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, type_=sa.Integer(), existing_type=sa.BigInteger())

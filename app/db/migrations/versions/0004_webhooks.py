"""Add webhook URLs, signing secrets and the delivery log

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

Jobs may name a webhook URL, each workspace keeps the secrets that sign its deliveries, and
every delivery attempt is recorded. SQLite cannot add columns in every form PostgreSQL can, so
the new columns go through batch mode, as in 0003.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workspace") as batch:
        batch.add_column(sa.Column("webhook_secret", sa.String(), nullable=True))
        batch.add_column(sa.Column("webhook_previous_secret", sa.String(), nullable=True))
        batch.add_column(
            sa.Column(
                "webhook_previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True
            )
        )
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("webhook_url", sa.String(), nullable=True))

    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_delivery_job_id", "webhook_delivery", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_delivery_job_id", table_name="webhook_delivery")
    op.drop_table("webhook_delivery")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("webhook_url")
    with op.batch_alter_table("workspace") as batch:
        batch.drop_column("webhook_previous_secret_expires_at")
        batch.drop_column("webhook_previous_secret")
        batch.drop_column("webhook_secret")

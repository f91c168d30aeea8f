"""Index jobs by workspace and status

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

Counting a workspace's running jobs, which the cap on running jobs does for every job start,
reads this index instead of every row of the workspace.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_job_workspace_status", "job", ["workspace_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_job_workspace_status", table_name="job")

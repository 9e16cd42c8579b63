"""Web jobs kept across a server restart: what was asked, how far it got, and its result.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("starts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("work", sa.JSON, nullable=False),
        sa.Column("plan_toml", sa.Text, nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("report_html", sa.Text, nullable=True),
        sa.Column("figure_png", sa.LargeBinary, nullable=True),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])


def downgrade() -> None:
    raise NotImplementedError("the case store migrates forward only")

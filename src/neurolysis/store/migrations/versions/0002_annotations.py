"""Annotations and lighter listings: reports move to their own table; tags, notes and the parent link.

Every case is kept: each stored report is copied to ``reports`` before the column is dropped.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("case_id", sa.String(16), sa.ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("html", sa.Text, nullable=False),
    )
    op.create_table(
        "case_tags",
        sa.Column("case_id", sa.String(16), sa.ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag", sa.String(64), primary_key=True),
    )
    op.execute("INSERT INTO reports (case_id, html) SELECT id, report_html FROM cases WHERE report_html IS NOT NULL")
    # Plain ALTER TABLE on both databases (SQLite >= 3.35 drops and adds columns in place): a batch
    # copy of ``cases`` would drop the table that ``reports`` now references.
    op.execute("ALTER TABLE cases DROP COLUMN report_html")
    op.execute("ALTER TABLE cases ADD COLUMN parent_id VARCHAR(16)")
    op.execute("ALTER TABLE cases ADD COLUMN notes TEXT NOT NULL DEFAULT ''")
    op.create_index("ix_cases_parent_id", "cases", ["parent_id"])


def downgrade() -> None:
    raise NotImplementedError("the case store migrates forward only")

"""indexes for the inactive-users review and the pruning of old login attempts

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_users_last_login", "users", ["last_login"])
    op.create_index("ix_login_attempts_ts", "login_attempts", ["ts"])


def downgrade() -> None:
    op.drop_index("ix_login_attempts_ts", table_name="login_attempts")
    op.drop_index("ix_users_last_login", table_name="users")

"""instance: indexes for the server lists (order by created_at, id; host; changes-since)

Revision ID: 0019
Revises: 0018
"""
from alembic import op


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_instance_project_created', 'instance',
                    ['project_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_instance_created', 'instance', ['created_at', 'id'], unique=False)
    op.create_index('ix_instance_host', 'instance', ['host'], unique=False)
    op.create_index('ix_instance_updated_at', 'instance', ['updated_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_instance_updated_at', table_name='instance')
    op.drop_index('ix_instance_host', table_name='instance')
    op.drop_index('ix_instance_created', table_name='instance')
    op.drop_index('ix_instance_project_created', table_name='instance')

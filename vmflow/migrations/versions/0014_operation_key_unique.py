"""operation idempotency key unique per project: a key acts once across API processes

Revision ID: 0014
Revises: 0013
"""
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('operation', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_operation_project_idempotency_key',
                                          ['project_id', 'idempotency_key'])


def downgrade() -> None:
    with op.batch_alter_table('operation', schema=None) as batch_op:
        batch_op.drop_constraint('uq_operation_project_idempotency_key', type_='unique')

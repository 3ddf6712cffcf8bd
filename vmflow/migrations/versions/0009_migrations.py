"""migrations: one row per move of an instance between hosts (Nova's migrations
table): resize, cold migration, live migration, evacuation

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        'migration',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', text(), nullable=False),
        sa.Column('instance_id', text(), nullable=False),
        sa.Column('project_id', text(), nullable=False),
        sa.Column('user_id', text(), nullable=False),
        sa.Column('operation_id', text(), nullable=True),
        sa.Column('migration_type', text(), nullable=False),
        sa.Column('status', text(), nullable=False),
        sa.Column('source_host', text(), nullable=True),
        sa.Column('dest_host', text(), nullable=True),
        sa.Column('old_flavor_id', text(), nullable=True),
        sa.Column('new_flavor_id', text(), nullable=True),
        sa.Column('memory_total', sa.BigInteger(), nullable=True),
        sa.Column('memory_processed', sa.BigInteger(), nullable=True),
        sa.Column('memory_remaining', sa.BigInteger(), nullable=True),
        sa.Column('disk_total', sa.BigInteger(), nullable=True),
        sa.Column('disk_processed', sa.BigInteger(), nullable=True),
        sa.Column('disk_remaining', sa.BigInteger(), nullable=True),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('uuid'),
    )
    op.create_index('ix_migration_instance_id', 'migration', ['instance_id'])
    op.create_index('ix_migration_project_id', 'migration', ['project_id'])


def downgrade() -> None:
    op.drop_index('ix_migration_project_id', table_name='migration')
    op.drop_index('ix_migration_instance_id', table_name='migration')
    op.drop_table('migration')

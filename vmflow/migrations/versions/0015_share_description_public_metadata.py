"""share description, is_public and metadata; share snapshot and share type description
(Manila's API)

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sharetype', schema=None) as batch_op:
        batch_op.add_column(sa.Column('description', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=True))
    with op.batch_alter_table('share', schema=None) as batch_op:
        batch_op.add_column(sa.Column('description', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=True))
        batch_op.add_column(sa.Column('is_public', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('metadata', sa.JSON(), nullable=True))
    with op.batch_alter_table('sharesnapshot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('description', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sharesnapshot', schema=None) as batch_op:
        batch_op.drop_column('description')
    with op.batch_alter_table('sharetype', schema=None) as batch_op:
        batch_op.drop_column('description')
    with op.batch_alter_table('share', schema=None) as batch_op:
        batch_op.drop_column('metadata')
        batch_op.drop_column('is_public')
        batch_op.drop_column('description')

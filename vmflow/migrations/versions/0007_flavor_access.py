"""flavor access: the projects a private flavor is visible to

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('flavoraccess',
    sa.Column('flavor_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('project_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['flavor_id'], ['flavor.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('flavor_id', 'project_id')
    )
    with op.batch_alter_table('flavoraccess', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flavoraccess_project_id'), ['project_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('flavoraccess', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flavoraccess_project_id'))

    op.drop_table('flavoraccess')

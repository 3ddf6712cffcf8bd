"""instance nics: the NICs a server asked for at launch, and which port each became

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'instancenic',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('instance_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('network_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('port_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('fixed_ip', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('security_group_ids', sa.JSON(), nullable=True),
        sa.Column('preserve_on_delete', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('instancenic', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instancenic_instance_id'), ['instance_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_instancenic_port_id'), ['port_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('instancenic', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instancenic_port_id'))
        batch_op.drop_index(batch_op.f('ix_instancenic_instance_id'))
    op.drop_table('instancenic')

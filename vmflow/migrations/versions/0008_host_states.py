"""host states: Nova's service status (enabled/disabled with a reason, forced_down)
and the host's libvirt URI

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # server defaults fill the rows of hosts registered before this migration
    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.add_column(sa.Column('libvirt_uri', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('status', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default='enabled'))
        batch_op.add_column(sa.Column('disabled_reason', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=True))
        batch_op.add_column(sa.Column('forced_down', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.drop_column('updated_at')
        batch_op.drop_column('forced_down')
        batch_op.drop_column('disabled_reason')
        batch_op.drop_column('status')
        batch_op.drop_column('libvirt_uri')

"""keystone: application credentials, unscoped tokens, a user's default project

Revision ID: 0016
Revises: 0015
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('applicationcredential',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('project_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('secret_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'name')
    )
    with op.batch_alter_table('applicationcredential', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_applicationcredential_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_applicationcredential_user_id'), ['user_id'], unique=False)

    op.create_table('unscopedtoken',
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('unscopedtoken', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unscopedtoken_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('application_credential_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index(batch_op.f('ix_token_application_credential_id'), ['application_credential_id'], unique=False)

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('default_project_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('default_project_id')

    with op.batch_alter_table('token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_token_application_credential_id'))
        batch_op.drop_column('application_credential_id')

    with op.batch_alter_table('unscopedtoken', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unscopedtoken_user_id'))

    op.drop_table('unscopedtoken')
    with op.batch_alter_table('applicationcredential', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_applicationcredential_user_id'))
        batch_op.drop_index(batch_op.f('ix_applicationcredential_project_id'))

    op.drop_table('applicationcredential')

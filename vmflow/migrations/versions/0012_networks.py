"""networks: networks, subnets, ports and their fixed IPs, security groups and rules,
floating IPs, the auto network and default security group of each project

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('project_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('router_external', sa.Boolean(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('mtu', sa.Integer(), nullable=False),
    sa.Column('segmentation_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('segmentation_id')
    )
    with op.batch_alter_table('network', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_project_id'), ['project_id'], unique=False)

    op.create_table('securitygroup',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('project_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('securitygroup', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_securitygroup_project_id'), ['project_id'], unique=False)

    op.create_table('autonetwork',
    sa.Column('project_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('network_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['network.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('project_id'),
    sa.UniqueConstraint('network_id')
    )
    op.create_table('defaultsecuritygroup',
    sa.Column('project_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('security_group_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.ForeignKeyConstraint(['security_group_id'], ['securitygroup.id'], ),
    sa.PrimaryKeyConstraint('project_id'),
    sa.UniqueConstraint('security_group_id')
    )
    op.create_table('port',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('network_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('project_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('mac_address', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('device_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('device_owner', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('binding_host_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['network.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('mac_address')
    )
    with op.batch_alter_table('port', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_port_device_id'), ['device_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_port_network_id'), ['network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_port_project_id'), ['project_id'], unique=False)

    op.create_table('securitygrouprule',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('security_group_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('project_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('ethertype', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('protocol', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('port_range_min', sa.Integer(), nullable=True),
    sa.Column('port_range_max', sa.Integer(), nullable=True),
    sa.Column('remote_ip_prefix', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('remote_group_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('signature', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.ForeignKeyConstraint(['remote_group_id'], ['securitygroup.id'], ),
    sa.ForeignKeyConstraint(['security_group_id'], ['securitygroup.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('security_group_id', 'signature')
    )
    with op.batch_alter_table('securitygrouprule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_securitygrouprule_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_securitygrouprule_remote_group_id'), ['remote_group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_securitygrouprule_security_group_id'), ['security_group_id'], unique=False)

    op.create_table('subnet',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('network_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('project_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('cidr', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('gateway_ip', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('allocation_pools', sa.JSON(), nullable=True),
    sa.Column('enable_dhcp', sa.Boolean(), nullable=False),
    sa.Column('dns_nameservers', sa.JSON(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['network.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('network_id')
    )
    with op.batch_alter_table('subnet', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subnet_project_id'), ['project_id'], unique=False)

    op.create_table('floatingip',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('project_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('floating_network_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('floating_port_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('floating_ip_address', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('port_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('fixed_ip_address', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['floating_network_id'], ['network.id'], ),
    sa.ForeignKeyConstraint(['floating_port_id'], ['port.id'], ),
    sa.ForeignKeyConstraint(['port_id'], ['port.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('floating_port_id'),
    sa.UniqueConstraint('port_id', 'fixed_ip_address')
    )
    with op.batch_alter_table('floatingip', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_floatingip_floating_network_id'), ['floating_network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_floatingip_port_id'), ['port_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_floatingip_project_id'), ['project_id'], unique=False)

    op.create_table('ipallocation',
    sa.Column('network_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('ip_address', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('subnet_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('port_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['network.id'], ),
    sa.ForeignKeyConstraint(['port_id'], ['port.id'], ),
    sa.ForeignKeyConstraint(['subnet_id'], ['subnet.id'], ),
    sa.PrimaryKeyConstraint('network_id', 'ip_address')
    )
    with op.batch_alter_table('ipallocation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ipallocation_port_id'), ['port_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ipallocation_subnet_id'), ['subnet_id'], unique=False)

    op.create_table('portsecuritygroup',
    sa.Column('port_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('security_group_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['port.id'], ),
    sa.ForeignKeyConstraint(['security_group_id'], ['securitygroup.id'], ),
    sa.PrimaryKeyConstraint('port_id', 'security_group_id')
    )
    with op.batch_alter_table('portsecuritygroup', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portsecuritygroup_security_group_id'), ['security_group_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('portsecuritygroup', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portsecuritygroup_security_group_id'))

    op.drop_table('portsecuritygroup')
    with op.batch_alter_table('ipallocation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ipallocation_subnet_id'))
        batch_op.drop_index(batch_op.f('ix_ipallocation_port_id'))

    op.drop_table('ipallocation')
    with op.batch_alter_table('floatingip', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_floatingip_project_id'))
        batch_op.drop_index(batch_op.f('ix_floatingip_port_id'))
        batch_op.drop_index(batch_op.f('ix_floatingip_floating_network_id'))

    op.drop_table('floatingip')
    with op.batch_alter_table('subnet', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subnet_project_id'))

    op.drop_table('subnet')
    with op.batch_alter_table('securitygrouprule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_securitygrouprule_security_group_id'))
        batch_op.drop_index(batch_op.f('ix_securitygrouprule_remote_group_id'))
        batch_op.drop_index(batch_op.f('ix_securitygrouprule_project_id'))

    op.drop_table('securitygrouprule')
    with op.batch_alter_table('port', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_port_project_id'))
        batch_op.drop_index(batch_op.f('ix_port_network_id'))
        batch_op.drop_index(batch_op.f('ix_port_device_id'))

    op.drop_table('port')
    op.drop_table('defaultsecuritygroup')
    op.drop_table('autonetwork')
    with op.batch_alter_table('securitygroup', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_securitygroup_project_id'))

    op.drop_table('securitygroup')
    with op.batch_alter_table('network', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_project_id'))

    op.drop_table('network')

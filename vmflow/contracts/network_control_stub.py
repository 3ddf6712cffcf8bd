"""The control queue's activities of guest networks as workflows see them (a base of
vmflow.contracts.control_stub.ControlStub, which workflows use): a server's ports,
floating IPs, security groups, the reconciler's network pass, the metadata documents.
"""

from __future__ import annotations

from temporalio import activity

from vmflow.contracts.activity_names import ControlActs
from vmflow.contracts.instances import InstanceRef
from vmflow.contracts.metadata import InstanceMetadataRequest, InstanceMetadataSet
from vmflow.contracts.networks import (
    FloatingIpPlan,
    FloatingIpStatus,
    FloatingIpSync,
    InstanceFloatingIps,
    MoveFloatingIps,
)
from vmflow.contracts.ports import (
    AttachInterfaceRequest,
    GroupRefs,
    HostPorts,
    InstanceNetworking,
    InterfacePort,
    PortBinding,
)
from vmflow.contracts.security_groups import (
    NetworkPlan,
    NetworkPlanRequest,
    SecurityGroupPlan,
    SecurityGroupSync,
)

RUNS_ON_THE_WORKER = "declared here; the control worker runs this activity"


class NetworkControlStub:
    """Guest networks' database steps (queue `control`)."""

    # ---- floating IPs (activities/control/floating_ips.py) --------------------------------
    @activity.defn(name=ControlActs.FLOATING_IP_PLAN)
    async def floating_ip_plan(self, req: FloatingIpSync) -> FloatingIpPlan:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.FLOATING_IP_STATUS)
    async def floating_ip_status(self, req: FloatingIpStatus) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.INSTANCE_FLOATING_IPS)
    async def instance_floating_ips(self, req: MoveFloatingIps) -> InstanceFloatingIps:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- security groups, the reconciler's network pass ------------------------------------
    @activity.defn(name=ControlActs.SECURITY_GROUP_PLAN)
    async def security_group_plan(self, req: SecurityGroupSync) -> SecurityGroupPlan:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.RECONCILE_NETWORKS)
    async def reconcile_networks(self, req: NetworkPlanRequest) -> NetworkPlan:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- the metadata service (activities/control/metadata_docs.py) ------------------
    @activity.defn(name=ControlActs.INSTANCE_METADATA)
    async def instance_metadata(self, req: InstanceMetadataRequest) -> InstanceMetadataSet:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- a server's ports (activities/control/ports.py) -----------------------------------
    @activity.defn(name=ControlActs.CREATE_INSTANCE_PORTS)
    async def create_instance_ports(self, ref: InstanceRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.RELEASE_INSTANCE_PORTS)
    async def release_instance_ports(self, ref: InstanceRef) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.INSTANCE_NETWORKING)
    async def instance_networking(self, ref: InstanceRef) -> InstanceNetworking:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.BIND_INSTANCE_PORTS)
    async def bind_instance_ports(self, req: PortBinding) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.INSTANCE_GROUPS)
    async def instance_groups(self, ref: InstanceRef) -> GroupRefs:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.REMOTE_GROUP_PORTS)
    async def remote_group_ports(self, req: GroupRefs) -> HostPorts:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    # ---- interface attach/detach (activities/control/interface_ports.py) ---------------
    @activity.defn(name=ControlActs.ATTACH_INSTANCE_PORT)
    async def attach_instance_port(self, req: AttachInterfaceRequest) -> InterfacePort:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

    @activity.defn(name=ControlActs.RELEASE_INSTANCE_PORT)
    async def release_instance_port(self, req: InterfacePort) -> None:
        raise NotImplementedError(RUNS_ON_THE_WORKER)

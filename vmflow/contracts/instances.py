"""Contracts of launch and delete, and the references every instance contract uses.

One frozen dataclass in, one out, standard library only, so the workflow sandbox stays
cheap. The instance actions' contracts are in actions.py, the activity names in
activity_names.py, the non-retryable error types in errors.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# sha256 hex of an image's data: sent with a download, and with a host's import of a
# copy it hashed while writing it
CHECKSUM_HEADER = "X-Image-Checksum"


@dataclass(frozen=True)
class OperationRef:
    instance_id: str
    operation_id: str


@dataclass(frozen=True)
class InstanceRef:
    instance_id: str


@dataclass(frozen=True)
class ImageFile:
    image_id: str
    location: str  # API path of its data, /v1/images/<id>/file (hosts fetch over HTTP)
    checksum: str  # sha256 hex
    size: int
    disk_format: str  # qcow2 | raw | aki | ari


@dataclass(frozen=True)
class ConfigDrive:
    """Nova's config drive (config-2 layout): openstack/latest/{meta_data.json,user_data,
    network_data.json}."""

    instance_id: str
    meta_data_json: str
    user_data_b64: str | None
    network_data_json: str | None = None  # None: plans recorded before it existed


@dataclass(frozen=True)
class LaunchPlan:
    instance_id: str
    project_id: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    required_traits: list[str]
    forbidden_traits: list[str]
    root: ImageFile
    kernel: ImageFile | None
    ramdisk: ImageFile | None
    cmdline: str
    agent: bool  # image property hw_qemu_guest_agent
    config_drive: ConfigDrive | None
    schedule_to_start_s: float  # how long a chosen host may take to pick up work
    agent_timeout_s: float
    schedule_attempts: int = 3  # hosts to try (VMFLOW_SCHEDULE_ATTEMPTS); default: older plans


@dataclass(frozen=True)
class ScheduleRequest:
    instance_id: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    required_traits: list[str]
    forbidden_traits: list[str]
    exclude_hosts: list[str] = field(default_factory=list)
    # hosts this placement already tried, with why each failed: rejected with that reason
    tried: dict[str, str] = field(default_factory=dict)
    attempts: int = 0  # once `tried` has this many hosts, none is left (0: no bound)
    requested_host: str | None = None  # unshelve to a host (admin): only that one


@dataclass(frozen=True)
class ScheduleResult:
    hosts: list[str]  # best first


@dataclass(frozen=True)
class ClaimRequest:
    instance_id: str
    host: str
    vcpus: int
    ram_mb: int
    disk_gb: int


@dataclass(frozen=True)
class InstanceHost:
    instance_id: str
    host: str


@dataclass(frozen=True)
class LedgerEntry:
    host: str
    kind: str  # disk | domain | claim | cache | share | share_snapshot
    key: str  # path, domain uuid, image id, share or snapshot id
    instance_id: str | None = None


@dataclass(frozen=True)
class LedgerEntries:
    entries: list[LedgerEntry]


@dataclass(frozen=True)
class FetchImage:
    image: ImageFile


@dataclass(frozen=True)
class FetchedImage:
    path: str


@dataclass(frozen=True)
class CreateDisk:
    instance_id: str
    base_path: str
    base_format: str
    size_gb: int


@dataclass(frozen=True)
class DiskCreated:
    path: str


@dataclass(frozen=True)
class Nic:
    """A guest NIC on a port: the network's bridge on every host is named by its vni;
    port_security: the port's nwfilter (named by port_id, the IP its parameter)."""

    port_id: str
    mac: str
    vni: int
    mtu: int
    ip: str
    port_security: bool = True


@dataclass(frozen=True)
class DefineDomain:
    instance_id: str
    vcpus: int
    ram_mb: int
    disk_path: str
    kernel_path: str | None
    initrd_path: str | None
    cmdline: str
    agent: bool
    config_drive_path: str | None = None
    # empty in payloads and saved specs from before NICs: they decode unchanged
    nics: list[Nic] = field(default_factory=list)

    def __post_init__(self) -> None:
        # a saved spec (domain.json) read back as DefineDomain(**json) has dicts here
        if any(isinstance(n, dict) for n in self.nics):
            object.__setattr__(self, "nics", [n if isinstance(n, Nic) else Nic(**n)
                                              for n in self.nics])


@dataclass(frozen=True)
class ConfigDriveCreated:
    path: str


@dataclass(frozen=True)
class InstanceUpdate:
    instance_id: str
    vm_state: str | None = None
    task_state: str | None = None
    clear_task_state: bool = False
    host: str | None = None
    clear_host: bool = False
    fault: str | None = None
    clear_fault: bool = False


@dataclass(frozen=True)
class FinishOperation:
    operation_id: str
    status: str  # succeeded | failed | compensated
    error: str | None = None


@dataclass(frozen=True)
class DeletePlan:
    instance_id: str
    host: str | None


@dataclass(frozen=True)
class HostInfo:
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    traits: list[str]
    virt_type: str
    hostname: str
    libvirt_uri: str = ""  # how an operator reaches the host's libvirt (`virsh -c`)
    migration_address: str = ""  # the host's underlay address (disk copies between hosts)
    migration_uri: str = ""  # what a peer's libvirtd dials for a peer-to-peer migration


@dataclass(frozen=True)
class StepStatus:
    """What a running workflow reports through its `status` query."""

    step: str
    progress: int | None
    host: str | None

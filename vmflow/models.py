"""SQLModel tables: the control plane's state."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def now() -> datetime:
    return datetime.now(UTC)


# X-OpenStack-Request-Id of the request being served (set by api/openstack's middleware)
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def new_id() -> str:
    return str(uuid.uuid4())


class Project(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    name: str = Field(unique=True, index=True)
    created_at: datetime = Field(default_factory=now)


class User(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    name: str = Field(unique=True, index=True)
    password_hash: str = ""
    # Keystone's default_project_id: where an unscoped login lands; grants nothing
    default_project_id: str | None = None
    created_at: datetime = Field(default_factory=now)


class Membership(SQLModel, table=True):
    """A user's role in a project: admin, member or reader."""

    user_id: str = Field(foreign_key="user.id", primary_key=True)
    project_id: str = Field(foreign_key="project.id", primary_key=True)
    role: str


class Token(SQLModel, table=True):
    token_hash: str = Field(primary_key=True)  # sha256 of the bearer token
    user_id: str = Field(foreign_key="user.id", index=True)
    project_id: str = Field(foreign_key="project.id")
    role: str
    created_at: datetime = Field(default_factory=now)
    expires_at: datetime | None = None
    # the application credential it was issued for: never re-scoped, revoked with it
    application_credential_id: str | None = Field(default=None, index=True)


class UnscopedToken(SQLModel, table=True):
    """A Keystone token scoped to no project (a user with none to land in): it reaches
    only the identity API (list my projects, re-scope), never a vmflow resource."""

    token_hash: str = Field(primary_key=True)  # sha256 of the token
    user_id: str = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=now)
    expires_at: datetime


class ApplicationCredential(SQLModel, table=True):
    """Keystone's application credential: a secret (stored hashed, shown once) that
    logs its user into one project with at most the role it was made with."""

    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: str = Field(default_factory=new_id, primary_key=True)
    user_id: str = Field(foreign_key="user.id", index=True)
    project_id: str = Field(foreign_key="project.id", index=True)
    name: str
    description: str = ""
    secret_hash: str
    role: str
    expires_at: datetime | None = None
    created_at: datetime = Field(default_factory=now)


class Flavor(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    name: str = Field(unique=True, index=True)
    vcpus: int
    ram_mb: int
    disk_gb: int
    is_public: bool = True
    extra_specs: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON))
    description: str | None = None  # Nova's, shown from compute microversion 2.55


class FlavorAccess(SQLModel, table=True):
    """A project allowed to see and boot a private flavor (Nova's flavor access)."""

    flavor_id: str = Field(foreign_key="flavor.id", primary_key=True)
    project_id: str = Field(foreign_key="project.id", primary_key=True, index=True)
    created_at: datetime = Field(default_factory=now)


class Image(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    name: str = Field(index=True)
    status: str = "queued"
    disk_format: str
    container_format: str = "bare"
    size: int | None = None
    checksum: str | None = None  # sha256 hex
    visibility: str = "private"
    owner: str | None = None  # project id
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    location: str | None = None  # path in the image store
    fault: str | None = None  # why the image is in error (inspection, a failed snapshot)
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)


class ImageMember(SQLModel, table=True):
    """A project an image is shared with (Glance image members). The member may boot
    the image only once it has accepted the share."""

    image_id: str = Field(foreign_key="image.id", primary_key=True)
    member: str = Field(foreign_key="project.id", primary_key=True, index=True)
    status: str = "pending"  # pending | accepted | rejected
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)


class Host(SQLModel, table=True):
    name: str = Field(primary_key=True)
    hostname: str = ""
    vcpus: int
    ram_mb: int
    disk_gb: int
    traits: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    virt_type: str = "qemu"
    libvirt_uri: str = ""
    # the host's underlay address (disk copies between hosts) and what a peer's libvirtd
    # dials for a peer-to-peer migration
    migration_address: str = ""
    migration_uri: str = ""
    registered_at: datetime = Field(default_factory=now)
    # Nova's service state, set by an admin (PUT /v1/hosts/{name}); whether the host is
    # up comes from its heartbeat in Temporal (vmflow.host_liveness), not from here
    status: str = "enabled"  # enabled | disabled
    disabled_reason: str | None = None
    forced_down: bool = False
    updated_at: datetime | None = None  # the last change of the three above


class Allocation(SQLModel, table=True):
    """A claim of host resources for one instance."""

    instance_id: str = Field(primary_key=True)
    host: str = Field(foreign_key="host.name", index=True)
    vcpus: int
    ram_mb: int
    disk_gb: int
    created_at: datetime = Field(default_factory=now)


class Instance(SQLModel, table=True):
    # the server lists' order (created_at, id) within a project and across them, and
    # their host and changes-since filters (api/services/servers.py list_page)
    __table_args__ = (Index("ix_instance_project_created", "project_id", "created_at", "id"),
                      Index("ix_instance_created", "created_at", "id"),
                      Index("ix_instance_host", "host"),
                      Index("ix_instance_updated_at", "updated_at"))
    id: str = Field(default_factory=new_id, primary_key=True)  # = libvirt domain UUID
    name: str = Field(index=True)
    project_id: str = Field(foreign_key="project.id", index=True)
    user_id: str = Field(foreign_key="user.id")
    image_id: str
    flavor_id: str
    host: str | None = None
    vm_state: str = "building"
    task_state: str | None = None
    locked: bool = False
    locked_by: str | None = None  # "owner" or "admin" (Nova): only admin lifts an admin lock
    locked_reason: str | None = None
    fault: str | None = None
    key_name: str | None = None
    user_data: str | None = None
    meta: dict[str, str] = Field(default_factory=dict, sa_column=Column("metadata", JSON))
    # shelve: the snapshot unshelve spawns from, and when it was taken (cleared on unshelve)
    shelved_image_id: str | None = None
    shelved_at: datetime | None = None
    # Nova's free text (2.19) and access addresses (accessIPv4/v6): kept, shown, never used
    description: str | None = None
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)
    deleted_at: datetime | None = None


class Migration(SQLModel, table=True):
    """One move of an instance between hosts (Nova's migrations table): a resize, a
    cold migration, a live migration or an evacuation, with its progress."""

    id: int | None = Field(default=None, primary_key=True)  # Nova's API shows an integer
    uuid: str = Field(default_factory=new_id, unique=True)
    instance_id: str = Field(index=True)
    project_id: str = Field(index=True)
    user_id: str
    operation_id: str | None = None
    migration_type: str  # resize | migration | live-migration | evacuation
    # resize/migration: pre-migrating, migrating, post-migrating, finished, confirming,
    # confirmed, reverting, reverted, error; live-migration: queued, preparing, running,
    # completed, failed, cancelled; evacuation: accepted, pre-migrating, done, failed
    status: str
    source_host: str | None = None
    dest_host: str | None = None
    old_flavor_id: str | None = None
    new_flavor_id: str | None = None
    # progress in bytes, from the copy or the migration job (None until known)
    memory_total: int | None = Field(default=None, sa_column=Column(BigInteger))
    memory_processed: int | None = Field(default=None, sa_column=Column(BigInteger))
    memory_remaining: int | None = Field(default=None, sa_column=Column(BigInteger))
    disk_total: int | None = Field(default=None, sa_column=Column(BigInteger))
    disk_processed: int | None = Field(default=None, sa_column=Column(BigInteger))
    disk_remaining: int | None = Field(default=None, sa_column=Column(BigInteger))
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)


class Keypair(SQLModel, table=True):
    """An SSH public key of a user (Nova: keypairs belong to users, not projects)."""

    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: str = Field(default_factory=new_id, primary_key=True)
    user_id: str = Field(foreign_key="user.id", index=True)
    name: str
    public_key: str
    fingerprint: str  # SHA256:<base64 without padding>, as ssh-keygen -l prints it
    type: str = "ssh"
    created_at: datetime = Field(default_factory=now)


class Operation(SQLModel, table=True):
    """One user-visible operation (a workflow run); also the instance action history."""

    # one row per key and project, enforced by the database: two API processes that
    # both missed the other's row cannot both act on one Idempotency-Key
    __table_args__ = (UniqueConstraint("project_id", "idempotency_key",
                                       name="uq_operation_project_idempotency_key"),)
    id: str = Field(default_factory=new_id, primary_key=True)
    resource_type: str
    resource_id: str = Field(index=True)
    action: str
    status: str = "running"  # running | succeeded | failed | compensated
    workflow_id: str
    run_id: str | None = None
    project_id: str
    user_id: str
    # the request that started it: the id an OpenStack client got in its response header
    request_id: str = Field(default_factory=lambda: REQUEST_ID.get() or new_id())
    idempotency_key: str | None = Field(default=None, index=True)
    last_error: str | None = None
    started_at: datetime = Field(default_factory=now)
    finished_at: datetime | None = None


class Ledger(SQLModel, table=True):
    """Every side effect on a host, recorded before it is made (DESIGN decision 9)."""

    __table_args__ = (UniqueConstraint("host", "kind", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    host: str = Field(index=True)
    kind: str  # disk | domain | claim | cache; share | share_snapshot (key: their id)
    key: str
    instance_id: str | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=now)


class BackupSchedule(SQLModel, table=True):
    """A timetable of createBackup for one instance: a Temporal Schedule with the id
    `backup-<instance_id>-<id>` (vmflow.names.backup_schedule_id). Exactly one of
    `every` ("30m", "6h", "1d") and `cron` (5 fields, UTC) is set; `paused` mirrors the
    Temporal Schedule's state; each tick's Operation row is attributed to `user_id`."""

    id: str = Field(default_factory=new_id, primary_key=True)
    instance_id: str = Field(foreign_key="instance.id", index=True)
    project_id: str = Field(foreign_key="project.id", index=True)
    user_id: str = Field(foreign_key="user.id")
    every: str | None = None
    cron: str | None = None
    backup_type: str
    rotation: int
    paused: bool = False
    created_at: datetime = Field(default_factory=now)


class ShareType(SQLModel, table=True):
    """Manila share types: extra_specs such as snapshot_support ("True"/"False")."""

    id: str = Field(default_factory=new_id, primary_key=True)
    name: str = Field(unique=True, index=True)
    description: str | None = None
    is_public: bool = True
    extra_specs: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=now)


class Share(SQLModel, table=True):
    """A shared file system: a btrfs subvolume on a storage host, exported over NFS."""

    id: str = Field(default_factory=new_id, primary_key=True)
    name: str = Field(index=True)
    description: str | None = None
    is_public: bool = False  # Manila: other projects may see (not mount) a public share
    meta: dict[str, str] = Field(default_factory=dict, sa_column=Column("metadata", JSON))
    project_id: str = Field(foreign_key="project.id", index=True)
    user_id: str = Field(foreign_key="user.id")
    share_proto: str = "NFS"
    size_gb: int
    # what an extend in flight asked for; reserved against the quota while `extending`
    extending_to_gb: int | None = None
    share_type_id: str = Field(foreign_key="sharetype.id")
    snapshot_id: str | None = None  # the share snapshot it was created from
    host: str | None = None  # storage host (task queue storage.<host>)
    status: str = "creating"  # vmflow.share_states.ShareStatus
    access_rules_status: str = "active"  # active | syncing | error
    export_locations: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    fault: str | None = None
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)


class ShareAccessRule(SQLModel, table=True):
    """One access rule (Manila): its state moves queued_to_apply → applying → active |
    error and queued_to_deny → denying → deleted | error."""

    id: str = Field(default_factory=new_id, primary_key=True)
    share_id: str = Field(foreign_key="share.id", index=True)
    access_type: str  # ip | user | cert
    access_to: str  # normalized (vmflow.access_rules)
    access_level: str  # rw | ro
    state: str = "queued_to_apply"
    fault: str | None = None  # why the rule is in error
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)


class ShareSnapshot(SQLModel, table=True):
    """A read-only point-in-time copy of a share (a read-only btrfs snapshot)."""

    id: str = Field(default_factory=new_id, primary_key=True)
    share_id: str = Field(foreign_key="share.id", index=True)
    project_id: str = Field(foreign_key="project.id", index=True)
    user_id: str = Field(foreign_key="user.id")
    name: str
    description: str | None = None
    size_gb: int
    status: str = "creating"  # creating | available | deleting | error | error_deleting
    fault: str | None = None
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)


class Quota(SQLModel, table=True):
    """A project's own limit for one resource (shares, gigabytes, snapshots,
    snapshot_gigabytes); without a row the setting's default applies."""

    project_id: str = Field(foreign_key="project.id", primary_key=True)
    resource: str = Field(primary_key=True)
    hard_limit: int  # -1: unlimited


# the network tables live in their own module; importing it here registers them with
# the same metadata, so whoever imports vmflow.models sees every table
from vmflow import network_models  # noqa: E402, F401

"""Settings from the environment (VMFLOW_*), read lazily through get_settings()."""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/vmflow")
    return Path.home() / ".local/share/vmflow"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VMFLOW_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    database_url: str = ""  # empty: SQLite file in home
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    api_host: str = "127.0.0.1"
    api_port: int = 8774
    api_url: str = ""  # empty: http://127.0.0.1:<api_port>
    token: str = ""  # CLI token; empty: the admin-token file in home
    service_token: str = ""  # hosts' token for the image service; empty: service-token in home

    # hypervisor side
    host: str = Field(default_factory=socket.gethostname)
    hosts: int = 1  # hypervisor hosts started by `make up`
    libvirt_uri: str = "qemu:///system"
    # the host's own network namespace (vmflow.hostbed); empty: the machine's own
    host_netns: str = ""
    migration_address: str = ""  # the host's underlay address; empty: 127.0.0.1
    migration_uri: str = ""  # what a peer's libvirtd dials; empty: libvirt_uri
    # the link of the embedded stack's hosts to its outside-world namespace (vmflow.hostbed):
    # .1 the outside, .<i+1> host i; floating IPs come from the rest of it
    external_cidr: str = "203.0.113.0/24"
    virt_type: str = "auto"  # auto | kvm | qemu
    host_traits: str = ""  # comma-separated, matched against flavor extra_specs trait:X=required
    domain_prefix: str = "vmflow-"
    guest_cache: Path = Path("/var/cache/vmflow/tiny-guest")
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    reserved_host_ram_mb: int = 512
    host_down_after: float = 60.0  # seconds without a heartbeat before a host is down
    # hosts one placement tries when a chosen host's worker does not take the step
    schedule_attempts: int = Field(default=3, ge=1)

    # timeouts (seconds)
    schedule_to_start_timeout: float = 10.0
    agent_timeout: float = 180.0
    stop_timeout: float = 60.0  # clean shutdown before destroy (Nova: shutdown_timeout)
    reboot_timeout: float = 60.0  # soft reboot before escalating to hard
    power_sync_interval: float = 60.0  # the power-state reconciler's schedule
    reconcile_interval: float = 600.0  # the ledger reconciler's schedule
    reconcile_grace: float = 600.0  # an orphan younger than this is left alone
    # shelve: 0 offloads at once, -1 never, N > 0 after N seconds (Nova's shelved_offload_time)
    shelved_offload_time: int = Field(default=0, ge=-1)
    snapshot_thaw_deadline: float = 30.0  # a frozen guest is thawed by then, whatever happens
    snapshot_hold_frozen_s: float = 0.0  # tests only: stay frozen this long (fault tier)
    fault_points: bool = False  # tests only: <home>/fault-point.json kills workers (fault tier)
    qemu_img_cpu_seconds: int = 120
    qemu_img_memory_mb: int = 1024
    # live migration (Nova's live_migration_downtime, _completion_timeout, _timeout_action);
    # the completion timeout stays below reconcile_grace: the destination's claim is keyed
    # by the migration, which the ledger reconciler would count as an orphan after that
    live_migration_downtime_ms: int = Field(default=500, ge=1)
    live_migration_completion_timeout: float = Field(default=300.0, gt=0)
    live_migration_timeout_action: Literal["abort", "force_complete"] = "abort"

    # resize and cold migration (issue 11)
    allow_resize_to_same_host: bool = False  # Nova's allow_resize_to_same_host
    # a resize still VERIFY_RESIZE after this many seconds is confirmed by itself; 0: never
    resize_confirm_window: float = Field(default=3600.0, ge=0)

    # networks (issue 12): `networks: "auto"` gives a project without a network one /24
    # of this pool on first use (Nova's get-me-a-network)
    auto_network_pool: str = "10.100.0.0/16"

    # shares (storage worker; vmflow.share_states)
    storage_host: str = ""  # the storage worker's host name; empty: `host`
    storage_hosts: int = Field(default=1, ge=0, le=1)  # 0: `make up` runs no storage side
    share_pool_gb: int = 20  # the file-backed btrfs pool (sparse) made when absent
    # the address in export locations: the storage namespace's on the hosts' underlay
    # (vmflow.storage_netns.ADDRESS), where ganesha listens
    nfs_address: str = "10.77.0.250"
    quota_shares: int = 50  # per-project defaults (Manila's); -1 is unlimited
    quota_gigabytes: int = 1000
    quota_snapshots: int = 50
    quota_snapshot_gigabytes: int = 1000
    # compute and floating-IP quotas: unlimited (-1) unless the deployment sets a default
    quota_instances: int = -1
    quota_cores: int = -1
    quota_ram: int = -1  # MiB
    quota_floating_ips: int = -1

    # image service
    max_upload_gb: int = 64  # larger uploads are refused (413)
    max_image_virtual_gb: int = 1024  # larger virtual sizes are refused as absurd

    # the operators' view (vmflow.logs, vmflow.metrics)
    log_format: Literal["text", "json", "auto"] = "text"  # auto: text on a terminal, else json
    # host:port where this worker serves the Temporal SDK's Prometheus metrics; empty: none
    worker_metrics_address: str = ""

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'vmflow.db'}"

    @property
    def base_url(self) -> str:
        return self.api_url or f"http://127.0.0.1:{self.api_port}"

    @property
    def temporal_port(self) -> int:
        """The port of temporal_address (host:port), which the embedded stack serves."""
        return int(self.temporal_address.rsplit(":", 1)[1])

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "log"

    @property
    def image_store(self) -> Path:
        return self.home / "images"

    @property
    def admin_token_file(self) -> Path:
        return self.home / "admin-token"

    @property
    def service_token_file(self) -> Path:
        return self.home / "service-token"

    def host_dir(self, host: str | None = None) -> Path:
        """State a hypervisor keeps on its own disk: image cache and instance dirs."""
        return self.home / "hosts" / (host or self.host)

    @property
    def storage_name(self) -> str:
        return self.storage_host or self.host

    @property
    def storage_dir(self) -> Path:
        """The storage worker's files: pool image, mounts, ganesha config and state."""
        return self.home / "storage" / self.storage_name

    @property
    def traits(self) -> list[str]:
        return [t.strip() for t in self.host_traits.split(",") if t.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()

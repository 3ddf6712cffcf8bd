"""The host's own network: its underlay address, and commands run inside its network
namespace (vmflow.hostbed), where the other hosts are reachable and the machine's own
namespace is not. A host without a namespace (one machine, one libvirtd) uses
loopback."""

from __future__ import annotations

from vmflow.settings import Settings

LOOPBACK = "127.0.0.1"


def underlay_address(settings: Settings) -> str:
    """Where peers reach this host for disk copies."""
    return settings.migration_address or LOOPBACK


def in_host_netns(settings: Settings, argv: list[str]) -> list[str]:
    """argv, run inside the host's network namespace when it has one."""
    if not settings.host_netns:
        return list(argv)
    return ["ip", "netns", "exec", settings.host_netns, *argv]

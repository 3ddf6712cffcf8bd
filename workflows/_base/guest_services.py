"""The metadata documents and floating IPs of an instance follow its guest: put on the
host the guest runs on (spawn: launch, unshelve, evacuation; a move's destination)
and taken from the host it left (a move's source, delete). See metadata.py and
floating.py for the single steps.

A move's steps after the guest already runs on the destination are best effort: a
failure there is logged and never fails the move (the network reconciler and the next
publish catch up)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.metadata import InstanceMetadataRequest, MetadataRef
    from vmflow.contracts.networks import FloatingIpRef, FloatingIpSpec, MoveFloatingIps

from workflows._base.floating import move_floating_ips
from workflows._base.metadata import publish_metadata, withdraw_metadata
from workflows._base.saga import Compensations
from workflows._base.steps import all_of, control, describe, on_host

# collapsed: the recorded histories carry the marker (docs/decisions.md, "Replay baseline")
PATCH = "guest-services-follow"


async def publish(host: str, instance_id: str, undo: Compensations | None = None) -> None:
    """The instance's documents served on `host`; undo (pushed first): withdrawn."""
    if undo is not None:
        undo.push("metadata", lambda: withdraw_metadata(host, instance_id))
    await publish_metadata(host, instance_id)


async def floating_specs(instance_id: str) -> list[FloatingIpSpec]:
    """The NAT of every floating IP on the instance's ports (none while it has no host)."""
    return (await control(ControlStub.instance_floating_ips,
                          MoveFloatingIps(instance_id, "", ""))).specs


async def nat_floating_ips(host: str, instance_id: str,
                           undo: Compensations | None = None) -> int:
    """The instance's floating IPs NATed by `host` (a guest put there from nowhere or
    from a dead host); undo (pushed first): removed there again."""
    specs = await floating_specs(instance_id)
    if not specs:
        return 0
    if undo is not None:
        undo.push("floating IPs", lambda: remove_floating_ips(host, specs, attempts=0))
    for spec in specs:
        await on_host(host, HostStub.ensure_floating_ip, spec)
    return len(specs)


async def remove_floating_ips(host: str, specs: list[FloatingIpSpec], attempts: int = 5,
                              give_up_after_s: float = 900) -> None:
    await all_of(*[on_host(host, HostStub.remove_floating_ip, FloatingIpRef(s.floating_ip),
                           attempts=attempts, give_up_after_s=give_up_after_s)
                   for s in specs])


async def withdraw_best_effort(host: str, instance_id: str) -> None:
    """The instance's documents gone from a host its guest left; a host that does not
    answer keeps them until its ports are removed there (remove_port drops them)."""
    try:
        docs = await control(ControlStub.instance_metadata,
                             InstanceMetadataRequest(instance_id))
        await all_of(*[on_host(host, HostStub.withdraw_metadata,
                               MetadataRef(md.instance_id, md.network_id, md.fixed_ip),
                               attempts=3, give_up_after_s=120) for md in docs.ports])
    except Exception as err:
        workflow.logger.warning("metadata of %s stays on %s: %s", instance_id, host,
                                describe(err))


async def follow(instance_id: str, source: str, dest: str) -> None:
    """After a move, with the guest on `dest`: its documents served there, its floating
    IPs NATed there and gone from the source, its documents gone from the source.
    Never raises: the guest has moved."""
    try:
        await publish_metadata(dest, instance_id)
    except Exception as err:
        workflow.logger.warning("metadata of %s not published on %s: %s", instance_id, dest,
                                describe(err))
    try:
        await move_floating_ips(instance_id, source, dest)
    except Exception as err:
        workflow.logger.warning("floating IPs of %s did not follow to %s: %s", instance_id,
                                dest, describe(err))
    if source != dest:
        await withdraw_best_effort(source, instance_id)

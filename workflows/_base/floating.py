"""The floating IPs of an instance follow it to another host: for the move workflows
(live migration, once the guest runs on the destination). The destination NATs them
first and announces them (the outside's ARP switches at once), then the source lets
go; in between both answer, which only doubles a path, never cuts one."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.networks import FloatingIpRef, MoveFloatingIps

from workflows._base.steps import control, on_host


async def move_floating_ips(instance_id: str, source: str, dest: str,
                            schedule_to_start_s: float | None = None) -> int:
    """How many floating IPs moved. A source that cannot be reached keeps its copy
    until the network reconciler clears it; the destination's is what counts."""
    if source == dest:
        return 0
    fips = await control(ControlStub.instance_floating_ips,
                         MoveFloatingIps(instance_id, source, dest))
    for spec in fips.specs:
        await on_host(dest, HostStub.ensure_floating_ip, spec,
                      schedule_to_start_s=schedule_to_start_s)
    for spec in fips.specs:
        try:
            await on_host(source, HostStub.remove_floating_ip, FloatingIpRef(spec.floating_ip),
                          schedule_to_start_s=schedule_to_start_s, attempts=3)
        except Exception as err:  # the move itself has succeeded
            workflow.logger.warning("floating IP %s stays on %s: %s", spec.floating_ip,
                                    source, err)
    return len(fips.specs)

"""The clean-up of evacuated guests on their old host, once it is back (Nova's
_destroy_evacuated_instances): for each evacuation away from the host that is done,
destroy and undefine the old domain, remove its floating IPs' NAT (the destination
has them), its ports' filters, DHCP reservations and metadata documents and delete its
files there (never start them),
forget its ledger entries there, and mark the Migration row completed. Run by
RegisterHost when the host's worker registers, and by an evacuation that ends after
its source came back. Each step is idempotent; a failed one is logged and the row
stays `done`, so the next registration tries again."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.evacuate import EvacuationCleaned
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.instances import InstanceRef
    from vmflow.contracts.reconcile import HostRef

from workflows._base.guest_services import PATCH as SERVICES
from workflows._base.guest_services import floating_specs, remove_floating_ips
from workflows._base.ports import PATCH, unplug
from workflows._base.steps import control, describe, on_host


async def remove_evacuated(host: str, schedule_to_start_s: float) -> list[str]:
    """The instances whose old copy on `host` is gone now (or was never kept)."""
    found = await control(ControlStub.evacuated_from, HostRef(host))
    cleaned = []
    for guest in found.guests:
        ref = InstanceRef(guest.instance_id)
        try:
            if guest.remove:
                for step in (HostStub.destroy_domain, HostStub.delete_instance_files):
                    await on_host(host, step, ref, schedule_to_start_s=schedule_to_start_s,
                                  attempts=3, give_up_after_s=300)
                workflow.deprecate_patch(SERVICES)  # its floating IPs are NATed elsewhere now
                await remove_floating_ips(host, await floating_specs(guest.instance_id),
                                          attempts=3, give_up_after_s=300)
                workflow.deprecate_patch(PATCH)  # its ports' filters, leases and documents
                await unplug(host, guest.instance_id, give_up_after_s=300)
            await control(ControlStub.evacuation_cleaned,
                          EvacuationCleaned(host, guest.migration_id, guest.instance_id))
        except Exception as err:  # the next registration tries again
            workflow.logger.warning("evacuated instance %s not yet removed from %s: %s",
                                    guest.instance_id, host, describe(err))
            continue
        workflow.logger.info("removed evacuated instance %s from %s", guest.instance_id, host)
        cleaned.append(guest.instance_id)
    return cleaned

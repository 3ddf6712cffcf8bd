"""The metadata service's steps for the workflows that put a guest on a host or take it
away (launch, unshelve, the moves, delete): the control side builds the instance's
documents (one per address of its ports), the host serves them to those addresses.

- publish_metadata(host, instance_id): after the guest's NICs are on `host` (its
  networks ensured there); again after anything that changes the documents (a floating
  IP, an interface attach). Publishing again replaces, so a retry is harmless.
- withdraw_metadata(host, instance_id): before the guest's ports leave the instance
  (their addresses may go to another guest next); on a move's source once the guest
  runs on the destination. The host drops a port's documents by itself too when the
  port is removed from it (remove_port), and a network's with the network.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from vmflow.contracts.control_stub import ControlStub
    from vmflow.contracts.host_stub import HostStub
    from vmflow.contracts.metadata import InstanceMetadataRequest, MetadataRef

from workflows._base.steps import all_of, control, on_host


async def publish_metadata(host: str, instance_id: str) -> int:
    """Every address of the instance served its documents on `host`; returns how many."""
    docs = await control(ControlStub.instance_metadata, InstanceMetadataRequest(instance_id))
    await all_of(*(on_host(host, HostStub.publish_metadata, md) for md in docs.ports))
    return len(docs.ports)


async def withdraw_metadata(host: str, instance_id: str) -> int:
    """Nothing of the instance served on `host` any more (undo steps: retried until
    done); returns how many addresses were withdrawn."""
    docs = await control(ControlStub.instance_metadata, InstanceMetadataRequest(instance_id))
    await all_of(*(on_host(host, HostStub.withdraw_metadata,
                           MetadataRef(md.instance_id, md.network_id, md.fixed_ip),
                           attempts=0) for md in docs.ports))
    return len(docs.ports)

"""The API's checks of evacuate, before anything changes (they ask Temporal about
heartbeats, so they run apart from server_actions.workflow_input, which makes the
workflow's input).

Nova refuses while the server's host is up (its service not forced down and its
heartbeat fresh) with 400 "Compute service of <host> is still in use."; a named
destination must be a registered host other than the source, and usable now
(enabled, not forced down, heartbeating). Refusals are 400 and change nothing."""

from __future__ import annotations

from sqlmodel import Session
from temporalio.client import Client

from api.errors import BadRequest, Conflict, ServiceUnavailable
from vmflow.host_liveness import fresh, last_seen
from vmflow.models import Host, Instance
from vmflow.settings import get_settings


async def heartbeat_fresh(client: Client, host: str) -> bool:
    """Whether the host heartbeats. Unlike GET /v1/hosts, an unanswered question is
    not "down" here: evacuating a host that is in fact up would run the guest twice."""
    try:
        seen = await last_seen(client, host)
    except Exception as e:
        raise ServiceUnavailable(f"could not ask Temporal whether host {host} is up: {e}",
                                 type="TemporalUnavailable") from e
    return fresh(seen, get_settings().host_down_after)


async def check_evacuate(client: Client, session: Session, inst: Instance,
                         host: str | None) -> None:
    if not inst.host:
        raise Conflict(f"server {inst.id} has no host to evacuate from",
                       type="ActionNotAllowed")
    target = None
    if host is not None:
        target = session.get(Host, host)
        if target is None:
            # Nova answers 404 here; 400 as for every other action's host (docs/decisions.md)
            raise BadRequest(f"Compute host {host} not found.", type="HostNotFound")
        if host == inst.host:
            raise BadRequest("The target host can't be the same one.", type="SameHost")
    source = session.get(Host, inst.host)
    if source is not None and not source.forced_down and await heartbeat_fresh(
            client, source.name):
        raise BadRequest(f"Compute service of {inst.host} is still in use.",
                         type="ComputeServiceInUse")
    if target is not None:
        why = ("disabled" + (f": {target.disabled_reason}" if target.disabled_reason else "")
               if target.status != "enabled" else "forced down" if target.forced_down
               else None)
        if why is None and not await heartbeat_fresh(client, target.name):
            why = "down (no heartbeat from its worker)"
        if why:
            raise BadRequest(f"host {host} cannot take the server: it is {why}",
                             type="HostUnavailable")

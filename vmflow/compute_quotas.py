"""Per-project compute and floating-IP quotas (Nova's instances, cores, ram; Neutron's
floating IPs): each limit is the project's Quota row (the same table as the share
quotas) or else the setting's default, -1 (unlimited) unless the deployment sets one.
In use is counted from the rows themselves: live servers with their flavors' vCPUs and
RAM, the project's floating IPs.

check() holds the project's row until the caller commits (vmflow.db.lock_row): run
it in the session that then adds the server or the floating IP, with no await before
the commit, and two creates of one API process or of two cannot both take the last
unit.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from vmflow.db import lock_row, released
from vmflow.models import Flavor, Instance, Project
from vmflow.network_models import FloatingIp
from vmflow.settings import Settings
from vmflow.share_quotas import UNLIMITED, QuotaExceeded, project_limits
from vmflow.states import VmState

RESOURCES = ("instances", "cores", "ram", "floating_ips")


def defaults(s: Settings) -> dict[str, int]:
    return {"instances": s.quota_instances, "cores": s.quota_cores, "ram": s.quota_ram,
            "floating_ips": s.quota_floating_ips}


def limits(session: Session, project_id: str, s: Settings) -> dict[str, int]:
    return project_limits(session, project_id, defaults(s))


def usage(session: Session, project_id: str) -> dict[str, int]:
    instances, cores, ram = session.exec(
        select(func.count(), func.coalesce(func.sum(Flavor.vcpus), 0),
               func.coalesce(func.sum(Flavor.ram_mb), 0))
        .select_from(Instance).join(Flavor, col(Flavor.id) == col(Instance.flavor_id))
        .where(Instance.project_id == project_id, Instance.vm_state != VmState.DELETED,
               col(Instance.deleted_at).is_(None))).one()
    fips = session.exec(select(func.count()).select_from(FloatingIp)
                        .where(FloatingIp.project_id == project_id)).one()
    return {"instances": int(instances), "cores": int(cores), "ram": int(ram),
            "floating_ips": int(fips)}


def check(session: Session, project_id: str, s: Settings, *, instances: int = 0,
          cores: int = 0, ram: int = 0, floating_ips: int = 0) -> None:
    """Raise QuotaExceeded (type OverQuota for floating IPs, as Neutron; else Nova's
    message) if adding these would go over a limit. Holds the project's row until the
    caller commits (rolled back when it raises)."""
    lock_row(session, Project, project_id)
    with released(session):
        lim, used = limits(session, project_id, s), usage(session, project_id)
        asked = {"instances": instances, "cores": cores, "ram": ram,
                 "floating_ips": floating_ips}
        over = [r for r in RESOURCES
                if asked[r] and lim[r] != UNLIMITED and used[r] + asked[r] > lim[r]]
        if not over:
            return
        if over == ["floating_ips"]:
            raise QuotaExceeded("OverQuota", "Quota exceeded for resources: ['floatingip'].")
        r = over[0]
        raise QuotaExceeded(
            "QuotaExceeded",
            f"Quota exceeded for {', '.join(over)}: Requested {asked[r]}, but already used "
            f"{used[r]} of {lim[r]} {r}")

"""Per-project share quotas (Manila's shares, gigabytes, snapshots, snapshot_gigabytes):
each limit is the project's Quota row or else the setting's default; -1 is unlimited.
In use is counted from the rows themselves (a share row lives until its storage is
gone), so there is no usage counter to drift. What an extend in flight asks for on top
(the share's `extending_to_gb` while it is `extending`) is reserved, as in Manila:
shown apart, and counted by check(), so two extends cannot both take the last
gigabytes.

check() is meant to run in the same session, without awaiting, as the insert it
guards: it holds the project's row until that commit (vmflow.db.lock_row), so two
requests, of one API process or of two, cannot both take the last unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from vmflow.db import lock_row, released
from vmflow.models import Project, Quota, Share, ShareSnapshot
from vmflow.settings import Settings
from vmflow.share_states import ShareStatus

RESOURCES = ("shares", "gigabytes", "snapshots", "snapshot_gigabytes")
UNLIMITED = -1


class QuotaExceeded(Exception):
    """Manila's quota errors (the API answers 413); `type` is Manila's exception name."""

    def __init__(self, type_: str, message: str):
        super().__init__(message)
        self.type, self.message = type_, message


def defaults(s: Settings) -> dict[str, int]:
    return {"shares": s.quota_shares, "gigabytes": s.quota_gigabytes,
            "snapshots": s.quota_snapshots, "snapshot_gigabytes": s.quota_snapshot_gigabytes}


def limits(session: Session, project_id: str, s: Settings) -> dict[str, int]:
    return project_limits(session, project_id, defaults(s))


def project_limits(session: Session, project_id: str,
                   defaults: dict[str, int]) -> dict[str, int]:
    """The project's own limit of each resource named in `defaults`, else the default;
    share and compute quotas share one Quota table."""
    out = dict(defaults)
    for row in session.exec(select(Quota).where(Quota.project_id == project_id)):
        if row.resource in out:
            out[row.resource] = row.hard_limit
    return out


def usage(session: Session, project_id: str) -> dict[str, int]:
    shares, gigabytes = session.exec(
        select(func.count(), func.coalesce(func.sum(Share.size_gb), 0))
        .where(Share.project_id == project_id)).one()
    snapshots, snapshot_gb = session.exec(
        select(func.count(), func.coalesce(func.sum(ShareSnapshot.size_gb), 0))
        .where(ShareSnapshot.project_id == project_id)).one()
    return {"shares": int(shares), "gigabytes": int(gigabytes), "snapshots": int(snapshots),
            "snapshot_gigabytes": int(snapshot_gb)}


def set_limits(session: Session, project_id: str, new: Mapping[str, int],
               resources: Sequence[str] = RESOURCES) -> None:
    """Upsert the project's own limits (added to the session; the caller commits);
    `resources`: the names allowed (vmflow.compute_quotas adds its own)."""
    for resource, limit in new.items():
        if resource not in resources:
            raise ValueError(f"unknown quota resource {resource!r}")
        if limit < UNLIMITED:
            raise ValueError(f"quota {resource} must be -1 (unlimited) or more")
        row = session.get(Quota, (project_id, resource))
        if row is None:
            row = Quota(project_id=project_id, resource=resource, hard_limit=limit)
        row.hard_limit = limit
        session.add(row)


def reserved(session: Session, project_id: str) -> dict[str, int]:
    """Gigabytes that extends in flight will add (zero for every other resource)."""
    to, size = col(Share.extending_to_gb), col(Share.size_gb)
    gigabytes = session.exec(
        select(func.coalesce(func.sum(to - size), 0))
        .where(col(Share.project_id) == project_id, col(Share.status) == ShareStatus.EXTENDING,
               to > size)).one()
    return {r: int(gigabytes or 0) if r == "gigabytes" else 0 for r in RESOURCES}


def _over(limit: int, used: int, delta: int) -> bool:
    return limit != UNLIMITED and used + delta > limit


def check(session: Session, project_id: str, s: Settings, *, shares: int = 0,
          gigabytes: int = 0, snapshots: int = 0, snapshot_gigabytes: int = 0) -> None:
    """Raise QuotaExceeded, with Manila's names and messages, if adding these deltas
    would go over a limit. Holds the project's row until the caller commits (rolled
    back when it raises)."""
    lock_row(session, Project, project_id)
    with released(session):
        _check(session, project_id, s, shares=shares, gigabytes=gigabytes,
               snapshots=snapshots, snapshot_gigabytes=snapshot_gigabytes)


def _check(session: Session, project_id: str, s: Settings, *, shares: int,
           gigabytes: int, snapshots: int, snapshot_gigabytes: int) -> None:
    lim, used = limits(session, project_id, s), usage(session, project_id)
    for resource, more in reserved(session, project_id).items():
        used[resource] += more
    if shares and _over(lim["shares"], used["shares"], shares):
        raise QuotaExceeded("ShareLimitExceeded",
                            f"Maximum number of shares allowed ({lim['shares']}) exceeded.")
    if gigabytes and _over(lim["gigabytes"], used["gigabytes"], gigabytes):
        raise QuotaExceeded(
            "ShareSizeExceedsAvailableQuota",
            f"Requested share exceeds allowed project/user or share type gigabytes quota: "
            f"{gigabytes}G requested, {used['gigabytes']}G of {lim['gigabytes']}G already "
            "consumed.")
    if snapshots and _over(lim["snapshots"], used["snapshots"], snapshots):
        raise QuotaExceeded("SnapshotLimitExceeded",
                            f"Maximum number of snapshots allowed ({lim['snapshots']}) exceeded.")
    if snapshot_gigabytes and _over(lim["snapshot_gigabytes"], used["snapshot_gigabytes"],
                                    snapshot_gigabytes):
        raise QuotaExceeded(
            "SnapshotSizeExceedsAvailableQuota",
            f"Requested snapshot exceeds allowed project/user or share type gigabytes quota: "
            f"{snapshot_gigabytes}G requested, {used['snapshot_gigabytes']}G of "
            f"{lim['snapshot_gigabytes']}G already consumed.")

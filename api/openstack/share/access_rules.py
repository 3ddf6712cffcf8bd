"""Manila's access rule views, and /share-access-rules (show, and list by share_id)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from api.deps import SessionDep
from api.errors import BadRequest, NotFound
from api.openstack.common import OsAuthDep
from api.openstack.microversion import MicroversionDep, Version
from api.openstack.share.base import router, stamp
from api.services.share_actions import access_rules
from api.services.shares import get_share
from vmflow.models import ShareAccessRule
from vmflow.share_states import RuleState

api = router()

# below 2.28 Manila showed the transitional rule states as their older names
LEGACY_STATES = {RuleState.QUEUED_TO_APPLY: "new", RuleState.APPLYING: "new",
                 RuleState.QUEUED_TO_DENY: "active", RuleState.DENYING: "active"}


def view(rule: ShareAccessRule, v: Version, with_share: bool = True) -> dict[str, Any]:
    state = LEGACY_STATES.get(RuleState(rule.state), rule.state) if v < Version(2, 28) \
        else rule.state
    d: dict[str, Any] = {"id": rule.id, "access_type": rule.access_type,
                         "access_to": rule.access_to, "access_level": rule.access_level,
                         "state": state}
    if with_share:
        d["share_id"] = rule.share_id
    if v >= Version(2, 21):
        d["access_key"] = None  # cephx keys only; vmflow serves NFS
    if v >= Version(2, 33):
        d |= {"created_at": stamp(rule.created_at), "updated_at": stamp(rule.updated_at)}
    if v >= Version(2, 45):
        d["metadata"] = {}
    return d


@api.get("/share-access-rules")
def list_access_rules(request: Request, session: SessionDep, auth: OsAuthDep,
                      v: MicroversionDep) -> dict[str, Any]:
    share_id = request.query_params.get("share_id")
    if not share_id:
        raise BadRequest("share_id is required to list access rules", type="InvalidInput")
    share = get_share(session, auth, share_id)
    return {"access_list": [view(r, v, with_share=False) for r in access_rules(session, share)]}


@api.get("/share-access-rules/{access_id}")
def show_access_rule(access_id: str, session: SessionDep, auth: OsAuthDep,
                     v: MicroversionDep) -> dict[str, Any]:
    rule = session.get(ShareAccessRule, access_id)
    if rule is None or rule.state == RuleState.DELETED:
        raise NotFound(f"Access rule {access_id} could not be found.")
    try:
        get_share(session, auth, rule.share_id)
    except NotFound:
        raise NotFound(f"Access rule {access_id} could not be found.") from None
    return {"access": view(rule, v)}

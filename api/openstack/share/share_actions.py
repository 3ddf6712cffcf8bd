"""POST /shares/{id}/action: Manila's share actions, each also under its old os- name.

allow_access answers 200 with the rule, access_list 200 with the rules; deny_access,
extend, shrink, reset_status, reset_task_state and force_delete 202 without a body.
soft_delete and restore are refused (400): vmflow has no recycle bin
(docs/decisions.md). The operations are api/services/share_actions.py's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Response
from pydantic import BaseModel, Field, ValidationError

from api.deps import MaybeTemporalDep, SessionDep
from api.errors import BadRequest, Forbidden
from api.openstack.common import Lenient, OsAuthDep
from api.openstack.microversion import MicroversionDep
from api.openstack.share.access_rules import view as access_view
from api.openstack.share.base import router
from api.services.share_actions import access_action, access_rules, run_action
from api.services.shares import get_share
from vmflow.models import ShareAccessRule

api = router()


class NoArgs(Lenient):
    pass


class AllowAccess(Lenient):
    access_type: str = Field(max_length=255)
    access_to: str = Field(max_length=1024)
    access_level: str = "rw"
    metadata: dict[str, Any] | None = None


class DenyAccess(Lenient):
    access_id: str = Field(max_length=255)


class Resize(Lenient):
    new_size: int = Field(ge=1)
    force: bool | str = False


class ResetStatus(Lenient):
    status: str = Field(max_length=255)


class ResetTaskState(Lenient):
    task_state: str | None


ACTIONS: dict[str, type[BaseModel]] = {
    "allow_access": AllowAccess, "deny_access": DenyAccess, "access_list": NoArgs,
    "extend": Resize, "shrink": Resize, "reset_status": ResetStatus,
    "reset_task_state": ResetTaskState, "force_delete": NoArgs,
    "soft_delete": NoArgs, "restore": NoArgs,
}
ADMIN = frozenset({"reset_status", "reset_task_state", "force_delete"})


def parse(body: Any) -> tuple[str, Any]:
    """The one action of the body (os- prefix dropped) and its arguments; 400 otherwise."""
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid request body: exactly one action is expected")
    ((key, value),) = body.items()
    name = key.removeprefix("os-")
    model = ACTIONS.get(name)
    if model is None:
        raise BadRequest(f"There is no such action: {key}")
    try:
        return name, model.model_validate({} if value is None else value)
    except ValidationError as e:
        parts = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                          for err in e.errors())
        raise BadRequest(f"Invalid input for {key}: {parts}") from None


@api.post("/shares/{share_id}/action", response_model=None)
async def share_action(share_id: str, body: Annotated[Any, Body()], response: Response,
                       session: SessionDep, auth: OsAuthDep, client: MaybeTemporalDep,
                       v: MicroversionDep) -> dict[str, Any] | Response:
    action, args = parse(body)
    # os_auth has refused readers already: every POST is a mutation to it
    if action == "access_list":
        share = get_share(session, auth, share_id)
        return {"access_list": [access_view(r, v, with_share=False)
                                for r in access_rules(session, share)]}
    if action in ADMIN and not auth.is_admin:
        raise Forbidden(f"Policy doesn't allow share:{action} to be performed.")
    share = get_share(session, auth, share_id)
    if action in ("soft_delete", "restore"):
        raise BadRequest(f"{action} is not supported: vmflow has no recycle bin; delete "
                         "the share to remove it", type="NotSupported")
    if action == "allow_access":
        if args.metadata:
            raise BadRequest("access rule metadata is not supported by vmflow",
                             type="NotSupported")
        out = await access_action(session, auth, client, share.id, action, args, None,
                                  response)
        rule = session.get(ShareAccessRule, out.access.id)
        assert rule is not None
        return {"access": access_view(rule, v)}
    if action == "deny_access":
        await access_action(session, auth, client, share.id, action, args, None, response)
        return Response(status_code=202)
    if action == "reset_task_state":
        if args.task_state is not None:
            raise BadRequest("vmflow's shares have no task states: only null may be set",
                             type="InvalidInput")
        return Response(status_code=202)  # already null: nothing to change
    await run_action(client, session, auth, share, action, args, None)
    return Response(status_code=202)

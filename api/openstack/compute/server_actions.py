"""POST /servers/{id}/action under Nova's names, bodies and answers, over the same
parse and run as /v1's action route (api/services/server_actions.py parse_action,
api/services/server_action_run.py run_action).

A Nova body carries keys vmflow does not use (rescue's adminPass, rebuild's name or
preserve_ephemeral, live migration's force ...): each action keeps only the keys
vmflow's argument model reads (KEEP) and ignores the rest. Answers as Nova's:
202 without a body, rescue 200 {adminPass}, rebuild 202 {server}, createImage and
createBackup a Location header before 2.45 and {image_id} from it, confirmResize 204,
evacuate 200; restore 409 (vmflow keeps no soft-deleted servers).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse

from api.deps import MaybeTemporalDep, SessionDep
from api.errors import BadRequest, Conflict
from api.openstack.common import OsWriterDep
from api.openstack.compute import server_views as views
from api.openstack.compute.servers import ENABLE_INSTANCE_PASSWORD, admin_pass, server_or_404
from api.openstack.microversion import MicroversionDep, Version
from api.services import metadata, servers
from api.services.server_action_run import run_action
from api.services.server_actions import parse_action
from api.services.servers import resolve_image

router = APIRouter(prefix="/v2.1/servers", tags=["compute server actions"])

# Nova action -> the keys of its body vmflow reads (None: takes no arguments)
KEEP: dict[str, tuple[str, ...] | None] = {
    "os-start": None, "os-stop": None, "pause": None, "unpause": None, "suspend": None,
    "resume": None, "unrescue": None, "shelve": None, "shelveOffload": None,
    "unlock": None, "forceDelete": None, "confirmResize": None, "revertResize": None,
    "reboot": ("type",),
    "rescue": ("rescue_image_ref",),
    "rebuild": ("imageRef",),
    "createImage": ("name", "metadata"),
    "createBackup": ("name", "backup_type", "rotation"),
    "resize": ("flavorRef", "OS-DCF:diskConfig"),
    "migrate": ("host",),
    "os-migrateLive": ("host", "block_migration"),
    "evacuate": ("host",),
    "unshelve": ("host",),
    "lock": ("locked_reason",),
    "os-resetState": ("state",),
}
NO_CONTENT = frozenset({"confirmResize"})


def vmflow_action(key: str, value: Any, v: Version) -> dict[str, Any]:
    """The /v1 action body the Nova one means; 400 for a malformed one."""
    keep = KEEP[key]
    if keep is None or value is None:
        return {key: None}
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field/attribute {key}: {value!r} is not an "
                         "object")
    if key == "lock" and "locked_reason" in value and v < Version(2, 73):
        raise BadRequest("Invalid input for field/attribute lock: locked_reason needs "
                         "microversion 2.73")
    args = {k: value[k] for k in keep if k in value}
    if key == "createBackup" and isinstance(args.get("rotation"), str):
        try:  # Nova's non_negative_integer takes "2" as well as 2
            args["rotation"] = int(args["rotation"])
        except ValueError:
            raise BadRequest("Invalid input for field/attribute rotation") from None
    if key == "os-migrateLive" and args.get("block_migration") is None:
        args.pop("block_migration", None)
    return {key: args}


@router.post("/{server_id}/action", response_model=None)
async def server_action(server_id: str, request: Request, response: Response,
                        session: SessionDep, auth: OsWriterDep, client: MaybeTemporalDep,
                        v: MicroversionDep,
                        body: Annotated[Any, Body()]) -> Response | dict[str, Any]:
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Malformed request body: one action key expected")
    ((key, value),) = body.items()
    if key == "restore":
        inst = server_or_404(session, auth, server_id)
        raise Conflict(f"Cannot 'restore' instance {inst.id} while it is in vm_state "
                       f"{inst.vm_state}")
    if key not in KEEP:
        raise BadRequest(f"There is no such action: {key}")
    parsed = parse_action(vmflow_action(key, value, v))
    inst = server_or_404(session, auth, server_id)
    outcome = await run_action(client, session, auth, inst, parsed, None, response)

    if key == "rescue":
        return {"adminPass": admin_pass(_get(value, "adminPass"))} \
            if ENABLE_INSTANCE_PASSWORD else {}
    if key == "rebuild":
        changes = _rebuild_changes(value)
        if changes:
            inst = servers.update(session, auth, inst.id, changes)
        if isinstance(value.get("metadata"), dict):
            inst = metadata.change(session, auth, None, inst.id, value["metadata"])
        ctx = await views.context(request, v, auth, session, client, [inst])
        # the row names the old image until the workflow's point of no return
        new_image = resolve_image(session, auth, parsed.args.image_ref).id
        server = views.rebuilt(ctx, inst, new_image)
        if ENABLE_INSTANCE_PASSWORD:
            server["adminPass"] = admin_pass(value.get("adminPass"))
        return JSONResponse({"server": server}, status_code=202)
    if outcome.snapshot is not None:
        image_id = outcome.snapshot.image_id
        if v >= Version(2, 45):
            return JSONResponse({"image_id": image_id}, status_code=202)
        return Response(status_code=202, headers={
            "Location": f"{views.endpoint(request).removesuffix('compute/')}image/v2/images/"
                        f"{image_id}"})
    if key in NO_CONTENT:
        return Response(status_code=204)
    if key == "evacuate":
        if ENABLE_INSTANCE_PASSWORD and v < Version(2, 14):
            return JSONResponse({"adminPass": admin_pass(_get(value, "adminPass"))})
        return Response(status_code=200)
    return Response(status_code=202)


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _rebuild_changes(value: dict[str, Any]) -> dict[str, str | None]:
    """What a rebuild body also sets (Nova applies them at once): the name, the
    description; access addresses are not checked here as in PUT."""
    changes: dict[str, str | None] = {}
    if isinstance(value.get("name"), str) and value["name"].strip():
        changes["name"] = value["name"]
    if "description" in value:
        changes["description"] = value["description"]
    return changes

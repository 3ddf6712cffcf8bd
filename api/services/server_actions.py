"""The body of `POST /v1/servers/{id}/action`: exactly one key, named as in Nova,
whose value is that action's arguments (null or {} when it takes none); each
workflow action's input, and the actions that are database changes (lock, unlock,
os-resetState).

Each key maps to a transition of vmflow.states.TRANSITIONS (reboot to two of them,
by its type) and a strict argument model, so a wrong type is refused before anything
is looked up or changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import Field, StringConstraints, ValidationError, field_validator
from sqlmodel import Session
from temporalio.client import Client

from api.auth import AuthContext
from api.errors import BadRequest, Conflict
from api.schemas.common import MetaKey, MetaValue, Name, Ref, Request
from api.services import flavors
from api.services.guards import user_name
from api.services.migrations import live_migrate_input
from api.services.operations import InputFactory
from api.services.preempt import running_operation
from api.services.servers import resolve_image
from vmflow.contracts.actions import RebootRequest, RebuildRequest, RescueRequest
from vmflow.contracts.evacuate import EvacuateRequest
from vmflow.contracts.instances import OperationRef
from vmflow.contracts.resize import ResizeRequest
from vmflow.contracts.shelve import SHELVE_MARKER, ShelveRequest, UnshelveRequest
from vmflow.models import Flavor, Host, Instance, Operation, now
from vmflow.settings import get_settings


class NoArgs(Request):
    pass


class RebootArgs(Request):
    type: str = Field(description="SOFT or HARD (any case, as Nova)")

    @field_validator("type")
    @classmethod
    def _soft_or_hard(cls, v: str) -> str:
        if v.upper() not in ("SOFT", "HARD"):
            raise ValueError("type must be SOFT or HARD")
        return v.upper()


# the longest an auto-unrescue may wait: a week (a rescue is meant to be short)
UNRESCUE_AFTER_MAX_S = 7 * 24 * 3600


class RescueArgs(Request):
    rescue_image_ref: Ref | None = None  # None: the image the server was built from
    # vmflow's own: leave rescue mode by itself this many seconds after the rescue
    unrescue_after: int | None = Field(None, ge=1, le=UNRESCUE_AFTER_MAX_S)


class RebuildArgs(Request):
    image_ref: Ref = Field(alias="imageRef", description="the new image: id or unique name")


# image properties vmflow sets on a snapshot itself; metadata may not name them
SNAPSHOT_RESERVED = frozenset({"image_type", "instance_uuid", "base_image_ref", "backup_type",
                               "user_id", "owner_id", "consistency", "snapshot_source",
                               SHELVE_MARKER})


class CreateImageArgs(Request):
    name: Name
    metadata: dict[MetaKey, MetaValue] = Field(default_factory=dict, max_length=128)

    @field_validator("metadata")
    @classmethod
    def _not_reserved(cls, v: dict[str, str]) -> dict[str, str]:
        taken = sorted(SNAPSHOT_RESERVED & set(v))
        if taken:
            raise ValueError(f"metadata may not set {', '.join(taken)}: vmflow sets them")
        return v


class CreateBackupArgs(Request):
    name: Name
    backup_type: Name = Field(description="e.g. daily or weekly: rotation counts per type")
    rotation: int = Field(ge=0, description="keep the newest this many backups of the type")


class ResizeArgs(Request):
    flavor_ref: Ref = Field(alias="flavorRef", description="the new flavor: id or unique name")
    disk_config: Literal["AUTO", "MANUAL"] | None = Field(None, alias="OS-DCF:diskConfig")


class TargetHostArgs(Request):
    """migrate, evacuate: an optional destination (admin; the scheduler picks if None)."""

    host: Name | None = None


class LiveMigrateArgs(Request):
    host: Name | None = None  # None: the scheduler picks
    # auto: copy the disks unless the instance's storage is shared (it never is here)
    block_migration: bool | Literal["auto"] = "auto"


class UnshelveArgs(Request):
    # Nova 2.91: an admin may name the host of an offloaded server (null: the scheduler's)
    host: Name | None = None


class LockArgs(Request):
    locked_reason: Annotated[str, StringConstraints(max_length=255)] | None = None


class ResetStateArgs(Request):
    state: Literal["active", "error"]


@dataclass(frozen=True)
class ActionSpec:
    args: type[Request]
    transition: Callable[[Any], str]  # the arguments -> a key of TRANSITIONS


def _fixed(name: str) -> Callable[[Any], str]:
    return lambda _args: name


ACTIONS: dict[str, ActionSpec] = {
    "os-start": ActionSpec(NoArgs, _fixed("start")),
    "os-stop": ActionSpec(NoArgs, _fixed("stop")),
    "reboot": ActionSpec(RebootArgs, lambda a: f"reboot-{a.type.lower()}"),
    "pause": ActionSpec(NoArgs, _fixed("pause")),
    "unpause": ActionSpec(NoArgs, _fixed("unpause")),
    "suspend": ActionSpec(NoArgs, _fixed("suspend")),
    "resume": ActionSpec(NoArgs, _fixed("resume")),
    "rescue": ActionSpec(RescueArgs, _fixed("rescue")),
    "unrescue": ActionSpec(NoArgs, _fixed("unrescue")),
    "createImage": ActionSpec(CreateImageArgs, _fixed("snapshot")),
    "createBackup": ActionSpec(CreateBackupArgs, _fixed("backup")),
    "rebuild": ActionSpec(RebuildArgs, _fixed("rebuild")),
    "shelve": ActionSpec(NoArgs, _fixed("shelve")),
    "shelveOffload": ActionSpec(NoArgs, _fixed("shelve-offload")),
    # with a host it is a transition of its own: admin only, from shelved_offloaded only
    "unshelve": ActionSpec(UnshelveArgs,
                           lambda a: "unshelve-to-host" if a.host else "unshelve"),
    "lock": ActionSpec(LockArgs, _fixed("lock")),
    "unlock": ActionSpec(NoArgs, _fixed("unlock")),
    "os-resetState": ActionSpec(ResetStateArgs, _fixed("reset-state")),
    "forceDelete": ActionSpec(NoArgs, _fixed("force-delete")),
    "resize": ActionSpec(ResizeArgs, _fixed("resize")),
    "migrate": ActionSpec(TargetHostArgs, _fixed("migrate")),
    "confirmResize": ActionSpec(NoArgs, _fixed("confirm-resize")),
    "revertResize": ActionSpec(NoArgs, _fixed("revert-resize")),
    "os-migrateLive": ActionSpec(LiveMigrateArgs, _fixed("live-migrate")),
    "evacuate": ActionSpec(TargetHostArgs, _fixed("evacuate")),
}



@dataclass(frozen=True)
class ParsedAction:
    key: str  # as in the body, e.g. "reboot"
    action: str  # the transition, e.g. "reboot-hard"
    args: Any  # an instance of the key's argument model


def parse_action(body: Any) -> ParsedAction:
    """The one action of a request body, validated; BadRequest (400) otherwise."""
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest('the body must be an object with exactly one action key, e.g. '
                         '{"os-stop": null}', type="ValidationError")
    ((key, value),) = body.items()
    spec = ACTIONS.get(key)
    if spec is None:
        raise BadRequest(f"unknown action {key!r}; known: {', '.join(sorted(ACTIONS))}",
                         type="UnknownAction")
    try:
        args = spec.args.model_validate({} if value is None else value)
    except ValidationError as e:
        # rendered like any other body error (400 ValidationError with details)
        raise RequestValidationError(
            [{**err, "loc": ("body", key, *err["loc"])} for err in e.errors()]) from None
    return ParsedAction(key=key, action=spec.transition(args), args=args)


# --- what the route runs ---------------------------------------------------------------

DATABASE_ACTIONS = frozenset({"lock", "unlock", "reset-state"})


async def database_action(client: Client | None, session: Session, inst: Instance,
                          auth: AuthContext, parsed: ParsedAction,
                          idempotency_key: str | None) -> None:
    """lock, unlock or reset-state, committed with its finished Operation row."""
    note = None
    if parsed.action == "lock":
        lock(inst, auth, parsed.args.locked_reason)
    elif parsed.action == "unlock":
        unlock(inst, auth)
    else:
        note = await reset_state(client, session, inst, auth, parsed.args.state)
    record(session, inst, auth, parsed.action, idempotency_key, note)


def workflow_input(session: Session, auth: AuthContext, inst: Instance,
                   parsed: ParsedAction) -> InputFactory:
    """The workflow's input for an operation id (contracts.py)."""
    if parsed.action in ("reboot-soft", "reboot-hard"):
        hard = parsed.action == "reboot-hard"
        return lambda op_id: RebootRequest(inst.id, op_id, hard)
    if parsed.action == "rescue":
        ref = parsed.args.rescue_image_ref
        image_id = resolve_image(session, auth, ref).id if ref else None  # 400 if bad
        after = parsed.args.unrescue_after
        return lambda op_id: RescueRequest(inst.id, op_id, image_id, after)
    if parsed.action == "rebuild":
        new_image = resolve_image(session, auth, parsed.args.image_ref).id  # 400 if bad
        return lambda op_id: RebuildRequest(inst.id, op_id, new_image)
    if parsed.action == "shelve":  # the offload time as configured when it was asked
        after = get_settings().shelved_offload_time
        return lambda op_id: ShelveRequest(inst.id, op_id, after)
    if parsed.action in ("unshelve", "unshelve-to-host"):
        host = parsed.args.host
        if host is not None and session.get(Host, host) is None:
            raise BadRequest(f"host {host!r} is not a registered host", type="HostNotFound")
        return lambda op_id: UnshelveRequest(inst.id, op_id, host)
    if parsed.action == "evacuate":  # checked first: api/services/evacuate.py
        host = parsed.args.host
        return lambda op_id: EvacuateRequest(inst.id, op_id, host)
    if parsed.action == "live-migrate":  # 400 for a bad host or block_migration false
        return live_migrate_input(session, inst, parsed.args.host,
                                  parsed.args.block_migration)
    if parsed.action in ("resize", "migrate"):
        flavor_id, host = move_target(session, auth, inst, parsed)  # 400 if bad
        return lambda op_id: ResizeRequest(inst.id, op_id, flavor_id, host)
    return lambda op_id: OperationRef(inst.id, op_id)


def move_target(session: Session, auth: AuthContext, inst: Instance,
                parsed: ParsedAction) -> tuple[str | None, str | None]:
    """resize: the new flavor, one the caller may use, not the same, not a smaller root
    disk (Nova's checks); migrate: the admin's host, if named, must be registered and,
    unless VMFLOW_ALLOW_RESIZE_TO_SAME_HOST, not the server's own. 400 otherwise."""
    if parsed.action == "migrate":
        host = parsed.args.host
        if host is not None:
            if session.get(Host, host) is None:
                raise BadRequest(f"host {host!r} is not a registered hypervisor host",
                                 type="HostNotFound")
            if host == inst.host and not get_settings().allow_resize_to_same_host:
                raise BadRequest(f"server {inst.id} is on {host} already; a migration needs "
                                 "another host", type="SameHost")
        return None, host
    new = flavors.resolve_flavor(session, auth, parsed.args.flavor_ref)
    old = session.get(Flavor, inst.flavor_id)
    if old is not None and new.id == old.id:
        raise BadRequest(f"server {inst.id} has flavor {new.name} already; resize needs "
                         "another flavor", type="SameFlavor")
    if old is not None and new.disk_gb < old.disk_gb:
        raise BadRequest(f"flavor {new.name}'s root disk ({new.disk_gb} GB) is smaller than "
                         f"the server's ({old.disk_gb} GB): disks are never shrunk",
                         type="FlavorDiskSmallerThanCurrent")
    return new.id, None


def lock(inst: Instance, auth: AuthContext, reason: str | None) -> None:
    if inst.locked and inst.locked_by == "admin" and not auth.is_admin:
        # re-locking would turn an administrator's lock into one the owner may lift
        raise Conflict(f"server {inst.id} is locked by an administrator",
                       type="InstanceLocked")
    inst.locked, inst.locked_reason = True, reason
    inst.locked_by = "admin" if auth.is_admin else "owner"


def unlock(inst: Instance, auth: AuthContext) -> None:
    if inst.locked and inst.locked_by == "admin" and not auth.is_admin:
        raise Conflict(f"server {inst.id} is locked by an administrator; only an "
                       "administrator can unlock it", type="InstanceLocked")
    inst.locked, inst.locked_by, inst.locked_reason = False, None, None


async def reset_state(client: Client | None, session: Session, inst: Instance,
                      auth: AuthContext, state: str) -> str:
    """Set vm_state, clear task_state; the audit text for the action history."""
    running = await running_operation(client, session, inst)
    if running is not None:
        raise Conflict(f"operation {running} is running on server {inst.id}; wait for it to "
                       "finish, or forceDelete the server")
    audit = (f"reset by {user_name(session, auth)} from "
             f"{inst.vm_state}/{inst.task_state or '-'} to {state}")
    inst.vm_state, inst.task_state = state, None
    return audit


def record(session: Session, inst: Instance, auth: AuthContext, action: str,
           idempotency_key: str | None, note: str | None) -> None:
    """Commit the change with a finished Operation row: the action history shows it
    and a repeated Idempotency-Key finds it."""
    inst.updated_at = now()
    session.add(inst)
    session.add(Operation(
        resource_type="instance", resource_id=inst.id, action=action, status="succeeded",
        workflow_id="", project_id=inst.project_id, user_id=auth.user_id,
        idempotency_key=idempotency_key, last_error=note,
        finished_at=now()))
    session.commit()

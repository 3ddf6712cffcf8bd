"""The body of `POST /v1/servers/{id}/action`: exactly one key, named as in Nova,
whose value is that action's arguments (null or {} when it takes none).

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

from api.errors import BadRequest
from api.schemas.common import MetaKey, MetaValue, Name, Ref, Request


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
                               "user_id", "owner_id", "consistency", "snapshot_source"})


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
    "lock": ActionSpec(LockArgs, _fixed("lock")),
    "unlock": ActionSpec(NoArgs, _fixed("unlock")),
    "os-resetState": ActionSpec(ResetStateArgs, _fixed("reset-state")),
    "forceDelete": ActionSpec(NoArgs, _fixed("force-delete")),
}

# in API.md, built by later work (images, moving hosts): refused by name, not as unknown
LATER = frozenset({
    "shelve", "shelveOffload", "unshelve",
    "migrate", "confirmResize", "revertResize", "os-migrateLive",
})


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
    if key in LATER:
        raise BadRequest(f"action {key} is not available in this version",
                         type="UnsupportedAction")
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

"""Whether a caller may run an action on an instance now: the state table's answer
(vmflow.states.TRANSITIONS) applied in one place for every route that mutates one.

Order matters and is the same everywhere: who may (403), the lock (409), the state
(409). Visibility (404) is the caller's job, before any of these.
"""

from __future__ import annotations

from sqlmodel import Session

from api.auth import AuthContext
from api.errors import Conflict, Forbidden
from vmflow import states
from vmflow.models import Instance, User
from vmflow.operations import PREEMPTING


def require_admin(action: str, auth: AuthContext) -> states.Transition:
    t = states.TRANSITIONS[action]
    if t.admin_only and not auth.is_admin:
        raise Forbidden(f"'{action}' needs role admin; the token has {auth.role}")
    return t


def lock_message(inst: Instance) -> str:
    by = " by an administrator" if inst.locked_by == "admin" else ""
    why = f": {inst.locked_reason}" if inst.locked_reason else ""
    return f"server {inst.id} is locked{by}{why}"


def check_lock(action: str, inst: Instance, auth: AuthContext) -> None:
    """Nova: a locked server refuses mutating actions from everyone but admins,
    including the member who locked it."""
    if inst.locked and states.TRANSITIONS[action].honours_lock and not auth.is_admin:
        raise Conflict(lock_message(inst), type="InstanceLocked")


def check_state(action: str, inst: Instance) -> states.Transition:
    """The table's allowed vm_states (ActionNotAllowed -> 409), and no task in flight
    for an action that would start another workflow."""
    t = states.check_action(action, inst.vm_state)
    if t.workflow and inst.task_state and action not in PREEMPTING:
        raise Conflict(f"Cannot '{action}' an instance while task_state {inst.task_state} is "
                       "in progress", type="ActionNotAllowed")
    return t


def check_allowed(action: str, inst: Instance, auth: AuthContext) -> states.Transition:
    require_admin(action, auth)
    check_lock(action, inst, auth)
    return check_state(action, inst)


def user_name(session: Session, auth: AuthContext) -> str:
    """For audit texts: the caller's name (its id if the user row is gone)."""
    user = session.get(User, auth.user_id)
    return user.name if user else auth.user_id

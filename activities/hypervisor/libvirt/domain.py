"""The domain wrapper: lookup by instance, one-line verbs, agent calls with a timeout.

Nova's virt/libvirt/guest.py in small: the one "not defined on this host" error,
power verbs that each ensure a state, destroy that rechecks, undefine with every
flag fallback, and guest-agent calls bounded by a timeout.

Activities ensure a state (DESIGN 7), and so do these verbs: starting a running
domain, destroying a stopped one, pausing a paused one, undefining a gone one all
succeed and change nothing.

The thaw guard imports this module in a fresh process before it reports "armed", so
the module imports libvirt only; the Temporal error types are imported where raised.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import libvirt
import libvirt_qemu

if TYPE_CHECKING:
    from temporalio.exceptions import ApplicationError

# libvirt prints every error to stderr by default; we handle them as exceptions
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

NOT_FOUND = libvirt.VIR_ERR_NO_DOMAIN
# newest first: drivers refuse flags they do not know (the test driver knows only
# managed save and snapshot metadata), so fall back step by step
UNDEFINE_FLAGS = [
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM,
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
]
# libvirt's state -> what vmflow calls the guest's power
POWER = {
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "running",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "running",  # shutting down: still running
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "paused",
}
# a thaw that fails so: no agent configured, the guest not running, or the domain
# gone; nothing is (or can be) frozen
NOTHING_TO_THAW = (libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED, libvirt.VIR_ERR_OPERATION_INVALID,
                   libvirt.VIR_ERR_NO_DOMAIN)


def gone(e: libvirt.libvirtError) -> bool:
    """The error says the domain is not (or no longer) defined."""
    return e.get_error_code() == NOT_FOUND


def not_defined(instance_id: str) -> ApplicationError:
    """The one error of a step that needs a domain this host does not have."""
    from temporalio.exceptions import ApplicationError

    from vmflow.contracts.errors import Errors

    return ApplicationError(f"domain {instance_id} is not defined on this host",
                            type=Errors.NOT_FOUND, non_retryable=True)


class Domain:
    def __init__(self, virdom: libvirt.virDomain):
        self.virdom = virdom  # for what has no verb here (backup jobs, block info)

    # ---- lookup ---------------------------------------------------------------------
    @classmethod
    def find(cls, conn: libvirt.virConnect, instance_id: str) -> Domain | None:
        """The domain of an instance (its UUID), or None when it is not defined."""
        try:
            return cls(conn.lookupByUUIDString(instance_id))
        except libvirt.libvirtError as e:
            if gone(e):
                return None
            raise

    @classmethod
    def require(cls, conn: libvirt.virConnect, instance_id: str) -> Domain:
        dom = cls.find(conn, instance_id)
        if dom is None:
            raise not_defined(instance_id)
        return dom

    # ---- reading --------------------------------------------------------------------
    def uuid(self) -> str:
        return self.virdom.UUIDString()

    def name(self) -> str:
        return self.virdom.name()

    def is_active(self) -> bool:
        return bool(self.virdom.isActive())

    def state(self) -> int:
        """libvirt's state (VIR_DOMAIN_RUNNING, ...)."""
        return int(self.virdom.state()[0])

    def power(self) -> str:
        """running, paused, shutoff, crashed or other."""
        return POWER.get(self.state(), "other")

    def has_managed_save(self) -> bool:
        return bool(self.virdom.hasManagedSaveImage(0))

    def xml(self) -> str:
        return self.virdom.XMLDesc(0)

    # ---- power ----------------------------------------------------------------------
    def start(self) -> None:
        """Running; with a managed-save image this resumes it (libvirt's rule)."""
        if not self.virdom.isActive():
            self.virdom.create()

    def request_shutdown(self) -> None:
        """Ask the guest to power off (agent first, then ACPI); does not wait."""
        self.virdom.shutdown()

    def destroy(self) -> None:
        """Off, the plug pulled (definition and disks stay). A destroy that fails
        while the domain stopped anyway (the guest powered off meanwhile) is done, and
        so is one of a domain undefined meanwhile: it is not running either."""
        try:
            if self.virdom.isActive():
                try:
                    self.virdom.destroy()
                except libvirt.libvirtError:
                    if self.virdom.isActive():
                        raise
        except libvirt.libvirtError as e:
            if not gone(e):
                raise

    def pause(self) -> None:
        if self.state() != libvirt.VIR_DOMAIN_PAUSED:
            self.virdom.suspend()

    def unpause(self) -> None:
        if self.state() == libvirt.VIR_DOMAIN_PAUSED:
            self.virdom.resume()

    def managed_save(self) -> None:
        """Memory to disk, domain off; the next start restores it. Off without a saved
        image cannot become saved: that is refused, not retried."""
        if self.virdom.isActive():
            self.virdom.managedSave(0)
        elif not self.virdom.hasManagedSaveImage(0):
            from temporalio.exceptions import ApplicationError

            from vmflow.contracts.errors import Errors

            raise ApplicationError("the domain is off without a saved image",
                                   type=Errors.INVALID_STATE, non_retryable=True)

    def drop_managed_save(self) -> None:
        """No managed-save image (the next start boots afresh)."""
        if self.virdom.hasManagedSaveImage(0):
            self.virdom.managedSaveRemove(0)

    # ---- definition -----------------------------------------------------------------
    def undefine(self) -> None:
        """Undefined, clearing managed save, snapshot and checkpoint metadata and NVRAM,
        so nothing of the domain stays behind; already undefined is fine."""
        try:
            for flags in UNDEFINE_FLAGS[:-1]:
                try:
                    self.virdom.undefineFlags(flags)
                    return
                except libvirt.libvirtError as e:
                    if e.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
                        raise
            self.virdom.undefineFlags(UNDEFINE_FLAGS[-1])
        except libvirt.libvirtError as e:
            if not gone(e):
                raise

    # ---- guest agent ----------------------------------------------------------------
    def agent_command(self, command: str, timeout_s: int = 5) -> object:
        """One guest-agent command; its "return". Raises libvirtError when the agent
        is not configured or does not answer within `timeout_s`."""
        out = libvirt_qemu.qemuAgentCommand(self.virdom, json.dumps({"execute": command}),
                                            timeout_s, 0)
        return json.loads(out).get("return")

    def limit_agent_wait(self, timeout_s: int) -> None:
        """Bound every later agent call libvirt makes for this domain (fsFreeze, fsThaw)
        to `timeout_s`: libvirt's default is to wait forever on a hung agent."""
        self.virdom.agentSetResponseTimeout(timeout_s, 0)

    def freeze(self) -> int:
        """Freeze the guest's file systems through the agent; how many it froze."""
        return int(self.virdom.fsFreeze())

    def thaw(self) -> int:
        """Thaw them; how many were frozen. NOTHING_TO_THAW lists the errors that
        mean no file system is frozen."""
        return int(self.virdom.fsThaw())

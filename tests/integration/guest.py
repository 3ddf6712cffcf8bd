"""Talking to a real guest: through its agent (guest-exec), as an operator would."""

from __future__ import annotations

import base64
import json
import time

import libvirt
import libvirt_qemu

POWER = {libvirt.VIR_DOMAIN_RUNNING: "running", libvirt.VIR_DOMAIN_PAUSED: "paused",
         libvirt.VIR_DOMAIN_SHUTOFF: "shutoff", libvirt.VIR_DOMAIN_SHUTDOWN: "running"}
# what each status means on the hypervisor, as `virsh domstate` would put it
EXPECTED_POWER = {"ACTIVE": "running", "SHUTOFF": "shutoff", "PAUSED": "paused",
                  "SUSPENDED": "shutoff+saved", "RESCUE": "running"}


# the stack's hosts (vmflow.hostbed), each its own libvirtd; set by the tier's fixture
HOSTS: list[str] = []


def domain(server_id: str) -> libvirt.virDomain:
    """The server's domain where it runs (a moved server may still be defined, shut off,
    on the host it left); else where it is defined."""
    found = []
    for uri in HOSTS:
        try:
            found.append(libvirt.open(uri).lookupByUUIDString(server_id))
        except libvirt.libvirtError:
            continue
    if not found:
        raise LookupError(f"server {server_id} is defined on none of {HOSTS}")
    return next((d for d in found if d.isActive()), found[0])


def power(server_id: str) -> str:
    dom = domain(server_id)
    saved = "+saved" if dom.hasManagedSaveImage(0) else ""
    return POWER.get(dom.state()[0], "other") + saved


def agent(server_id: str, command: str, args: dict[str, object] | None = None) -> object:
    req: dict[str, object] = {"execute": command}
    if args is not None:
        req["arguments"] = args
    out = libvirt_qemu.qemuAgentCommand(domain(server_id), json.dumps(req), 10, 0)
    return json.loads(out)["return"]


def sh(server_id: str, script: str, timeout: float = 30) -> tuple[int, str]:
    """Run a shell script in the guest and return (exit code, stdout)."""
    started = agent(server_id, "guest-exec", {"path": "/bin/sh", "arg": ["-c", script],
                                              "capture-output": True})
    pid = started["pid"]  # type: ignore[index]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st: dict[str, object] = agent(server_id, "guest-exec-status", {"pid": pid})  # type: ignore[assignment]
        if st.get("exited"):
            out = base64.b64decode(str(st.get("out-data", ""))).decode(errors="replace")
            return int(st.get("exitcode", -1)), out  # type: ignore[arg-type]
        time.sleep(0.1)
    raise TimeoutError(f"guest-exec {script!r} did not finish in {timeout}s")


def boot_id(server_id: str) -> str:
    return sh(server_id, "cat /proc/sys/kernel/random/boot_id")[1].strip()


def kill_agent_and_acpid(server_id: str) -> None:
    """A guest that ignores every polite shutdown: no agent, no ACPI handler."""
    started = agent(server_id, "guest-exec", {"path": "/bin/sh", "arg": [
        "-c", "touch /run/noqga; killall acpid; (sleep 1; killall qemu-ga) >/dev/null 2>&1 &"]})
    assert "pid" in started  # type: ignore[operator]
    time.sleep(2)

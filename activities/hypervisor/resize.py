"""Host activities of resize and cold migration: the source sets its copy aside and
serves its files read-only over NBD on its underlay address; the destination pulls
them into its own instance dir. Neither host ever writes into the other's files.

On the source the instance dir becomes `<uuid>_resize` (Nova's name) and stays there,
with its domain shut off, until confirm (drop_source) or revert (restore_source).
Files the destination pulled in carry a marker naming their migration, so its undo
(discard_incoming) can never take the source's copy for its own, also when both are
one host. Each activity ensures a state, so a retry finds the work done."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.errors import permanent, storage_errors
from activities.heartbeat import heartbeating
from activities.hypervisor import qemu_img
from activities.hypervisor.libvirt import domain_xml
from activities.hypervisor.libvirt.connection import Connection
from activities.hypervisor.libvirt.domain import Domain
from activities.hypervisor.power import config_for, spec_path
from activities.hypervisor.underlay import in_host_netns, underlay_address
from vmflow.contracts.activity_names import HostActs
from vmflow.contracts.errors import Errors
from vmflow.contracts.instances import DefineDomain
from vmflow.contracts.resize import (
    CopyProgress,
    Exported,
    ExportedFile,
    Pulled,
    PullFiles,
    SourceCopy,
    SourceRestored,
)
from vmflow.settings import Settings

ASIDE_SUFFIX = "_resize"
MOVED = "resize.json"  # in the set-aside dir: which migration, and whether the guest ran
INCOMING = "migration.json"  # in a pulled-in dir: the migration that brought it
FILES = ("disk", "config.iso")  # what travels; domain.json is written anew by define
EXPORT_PORTS = (20000, 29999)  # below the kernel's ephemeral range: clients never hold them
EXPORT_LIFETIME_S = 7200  # an export nobody ends (its worker died) stops by itself
_exports: dict[str, list[subprocess.Popen[bytes]]] = {}  # qemu-nbd servers to reap


def _read(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (FileNotFoundError, ValueError):
        return {}


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data))
    tmp.rename(path)


def some_port() -> int:
    """A port to try: the address lives in the host's namespace, where this process
    cannot ask the kernel for a free one; a taken port makes qemu-nbd exit, and the
    next is tried."""
    return random.randint(*EXPORT_PORTS)


class ResizeActivities:
    def __init__(self, settings: Settings, conn: Connection,
                 instance_dir: Callable[[str], Path]):
        self.settings = settings
        self.conn = conn
        self.instance_dir = instance_dir

    def aside(self, instance_id: str) -> Path:
        d = self.instance_dir(instance_id)
        return d.with_name(d.name + ASIDE_SUFFIX)

    def _incoming(self, req: SourceCopy) -> bool:
        """The instance dir holds what this migration pulled in, not a source copy."""
        d = self.instance_dir(req.instance_id)
        return _read(d / INCOMING).get("migration_id") == req.migration_id

    # ---- the source -------------------------------------------------------------------
    @activity.defn(name=HostActs.SET_ASIDE)
    @heartbeating
    def set_aside(self, req: SourceCopy) -> None:
        """The shut-off guest's dir becomes `<uuid>_resize`, with a note of the move."""
        d, aside = self.instance_dir(req.instance_id), self.aside(req.instance_id)
        if aside.exists():
            if _read(aside / MOVED).get("migration_id") != req.migration_id:
                raise permanent(f"{aside} belongs to another move", Errors.INVALID_STATE)
            return
        if not d.is_dir():
            raise permanent(f"instance {req.instance_id} has no files on this host",
                            Errors.NOT_FOUND)
        dom = Domain.find(self.conn.get(), req.instance_id)
        if dom is not None and dom.is_active():
            raise permanent("the guest still runs; it must be off to be moved",
                            Errors.INVALID_STATE)
        with storage_errors():
            _write(d / MOVED, {"migration_id": req.migration_id,
                               "was_running": req.was_running})
            d.rename(aside)

    @activity.defn(name=HostActs.EXPORT_FILES)
    def export_files(self, req: SourceCopy) -> Exported:
        """Serve each file of the set-aside copy read-only over NBD (its own bytes:
        a qcow2 overlay arrives as the same qcow2 file) on the underlay address."""
        aside = self.aside(req.instance_id)
        if not aside.is_dir():
            raise permanent(f"instance {req.instance_id} was not set aside here",
                            Errors.NOT_FOUND)
        self._unexport(req.instance_id)  # a retry: the earlier attempt's servers go
        addr = underlay_address(self.settings)
        files = []
        for name in FILES:
            path = aside / name
            if path.exists():
                port = self._serve(req.instance_id, addr, path)
                files.append(ExportedFile(name, port, path.stat().st_size))
        return Exported(addr, files)

    def _serve(self, instance_id: str, addr: str, path: Path) -> int:
        pidfile = path.with_name(f"nbd-{path.name}.pid")
        for _ in range(10):  # a port taken: choose again
            pidfile.unlink(missing_ok=True)
            port = some_port()
            argv = in_host_netns(self.settings, [
                "timeout", str(EXPORT_LIFETIME_S), "qemu-nbd", "--read-only", "-f", "raw",
                "--persistent", "--bind", addr, "--port", str(port),
                "--pid-file", str(pidfile), str(path)])
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            _exports.setdefault(instance_id, []).append(proc)
            deadline = time.monotonic() + 10
            while proc.poll() is None and not pidfile.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            if proc.poll() is None and pidfile.exists():
                return port
            proc.kill()
            proc.wait()
        raise RuntimeError(f"qemu-nbd could not serve {path.name} on {addr}")

    @activity.defn(name=HostActs.UNEXPORT_FILES)
    @heartbeating
    def unexport_files(self, req: SourceCopy) -> None:
        self._unexport(req.instance_id)

    def _unexport(self, instance_id: str) -> None:
        """Stop every NBD server of the copy: by pid file (a worker restarted since has
        no handle on them), only a qemu-nbd serving a file of this dir."""
        aside = self.aside(instance_id)
        for pidfile in aside.glob("nbd-*.pid") if aside.is_dir() else []:
            try:
                pid = int(pidfile.read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if cmdline and cmdline[0].endswith(b"qemu-nbd") and str(aside).encode() in (
                        b" ".join(cmdline)):
                    os.kill(pid, signal.SIGTERM)
            except (ValueError, FileNotFoundError, ProcessLookupError):
                pass
            pidfile.unlink(missing_ok=True)
        for proc in _exports.pop(instance_id, []):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @activity.defn(name=HostActs.RESTORE_SOURCE)
    @heartbeating
    def restore_source(self, req: SourceCopy) -> SourceRestored:
        """Revert, or the undo of a move: the set-aside copy back as the instance dir
        and its domain defined from its own saved request (the old flavor; on one host
        the destination's definition had replaced it). Not started here."""
        d, aside = self.instance_dir(req.instance_id), self.aside(req.instance_id)
        self._unexport(req.instance_id)
        if aside.exists():
            if d.exists():  # the destination's copy on this host must be gone first
                raise permanent(f"{d} still holds another copy; it must go before the "
                                "source's comes back", Errors.INVALID_STATE)
            with storage_errors():
                aside.rename(d)
        elif not d.is_dir():
            raise permanent(f"the source copy of instance {req.instance_id} is gone",
                            Errors.NOT_FOUND)
        moved = _read(d / MOVED)
        if moved and moved.get("migration_id") != req.migration_id:
            raise permanent(f"{d} was set aside by another move", Errors.INVALID_STATE)
        spec = DefineDomain(**json.loads(spec_path(d).read_text()))
        self.conn.get().defineXML(domain_xml.build(config_for(self.settings, self.conn,
                                                              spec, d)))
        return SourceRestored(bool(moved.get("was_running")))

    @activity.defn(name=HostActs.DROP_SOURCE)
    @heartbeating
    def drop_source(self, req: SourceCopy) -> None:
        """Confirm: the source's copy goes (its domain too, unless it is the one the
        destination defined on this same host). A running source guest is refused:
        it is the server, not a leftover."""
        self._unexport(req.instance_id)
        if not req.same_host:
            dom = Domain.find(self.conn.get(), req.instance_id)
            if dom is not None:
                if dom.is_active():
                    raise permanent("the source copy is running; revert the resize instead",
                                    Errors.INVALID_STATE)
                dom.undefine()
            d = self.instance_dir(req.instance_id)
            if d.is_dir() and _read(d / MOVED).get("migration_id") == req.migration_id:
                shutil.rmtree(d)  # a revert's rename back was half done: still the source's
        aside = self.aside(req.instance_id)
        if aside.exists():
            shutil.rmtree(aside)

    # ---- the destination -------------------------------------------------------------
    @activity.defn(name=HostActs.PULL_FILES)
    def pull_files(self, req: PullFiles) -> Pulled:
        """Fetch every exported file (heartbeat: CopyProgress in bytes), the root disk
        put over this host's cached base and grown to the new flavor's size. A file
        appears under its name only once complete, so a retry skips it."""
        d = self.instance_dir(req.instance_id)
        ref = SourceCopy(req.instance_id, req.migration_id)
        if d.exists() and not self._incoming(ref):
            raise permanent(f"{d} exists and is not this move's copy", Errors.INVALID_STATE)
        total = sum(f.size for f in req.exported.files)
        copied = 0
        with storage_errors():
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o755)
            _write(d / INCOMING, {"migration_id": req.migration_id})
            for f in req.exported.files:
                dst = d / f.name
                if not dst.exists():
                    part = d / f"{f.name}.part"
                    done = copied

                    def beat(frac: float, done: int = done, size: int = f.size) -> None:
                        activity.heartbeat(CopyProgress(done + int(frac * size), total))

                    beat(0.0)
                    qemu_img.pull_nbd(self.settings,
                                      f"nbd://{req.exported.address}:{f.port}/", str(part), beat)
                    if f.name == "disk":
                        qemu_img.rebase_unsafe(self.settings, str(part), "qcow2",
                                               req.base_path, req.base_format)
                        qemu_img.grow(self.settings, str(part), "qcow2", req.disk_gb)
                    part.rename(dst)
                copied += f.size
                activity.heartbeat(CopyProgress(copied, total))
        drive = d / "config.iso"
        return Pulled(str(d / "disk"), str(drive) if drive.exists() else None, total)

    @activity.defn(name=HostActs.DISCARD_INCOMING)
    @heartbeating
    def discard_incoming(self, req: SourceCopy) -> None:
        """Undo of the pull and define, and revert on the destination: its domain
        destroyed (and undefined, unless source and destination are one host, where
        restore_source defines the source's again) and its files removed, but only if
        the instance dir is this migration's incoming copy: a source copy is never
        touched."""
        if not self._incoming(req):
            return
        dom = Domain.find(self.conn.get(), req.instance_id)
        if dom is not None:
            dom.destroy()
            if not req.same_host:
                dom.undefine()
        shutil.rmtree(self.instance_dir(req.instance_id))

    def all(self) -> list[Callable[..., Any]]:
        return [self.set_aside, self.export_files, self.unexport_files, self.restore_source,
                self.drop_source, self.pull_files, self.discard_incoming]

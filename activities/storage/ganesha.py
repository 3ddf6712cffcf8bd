"""nfs-ganesha as vmflow's NFS exporter (testbed NOTES 1b).

Each share is one export file, $storage_dir/ganesha/exports/<share_id>.conf, with a
stable Export_Id (the lowest free one >= 100, remembered in the file) and Path = Pseudo
= the share's mount. The main config %includes every export file; it is rewritten
before any D-Bus call that follows a file appearing or going, because a SIGHUP or a
restart reconciles ganesha to the main config. Then AddExport / UpdateExport /
RemoveExport over ganesha's private D-Bus make the change live at once.

Nothing from a request reaches a config un-normalized: share ids must be canonical
UUIDs, paths our own (under storage_dir, plain characters), clients what the ipaddress
module prints for a strictly parsed address or network, levels rw or ro.

The storage activities call this from worker threads, so it is synchronous: each D-Bus
call runs dbus-fast's asyncio client under its own asyncio.run().
"""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import os
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

from vmflow import ganesha_config as gc
from vmflow.settings import Settings

EXPORT_ID_MIN = 100  # below: ganesha's own (0 is the NFSv4 pseudo root)
EXPORT_ID_MAX = 65535  # Export_Id is 16 bits
DBUS_TIMEOUT_S = 10.0
LEVELS = {"rw": "RW", "ro": "RO"}
_PATH_CHARS = re.compile(r"^/[A-Za-z0-9._@+/-]+$")
_CLIENT_CHARS = re.compile(r"^[0-9a-f.:/]+$")  # what ipaddress prints, nothing else
_EXPORT_ID = re.compile(r"^\s*Export_Id\s*=\s*(\d+)\s*;", re.MULTILINE)
# D-Bus errors that mean "nobody is there to answer": retrying may help
_UNREACHABLE = ("org.freedesktop.DBus.Error.ServiceUnknown",
                "org.freedesktop.DBus.Error.NameHasNoOwner",
                "org.freedesktop.DBus.Error.NoReply")
_thread_lock = threading.Lock()


class GaneshaError(RuntimeError):
    """ganesha refused a call (the text is its own)."""


class GaneshaUnavailable(GaneshaError):
    """ganesha or its bus is not answering: retry later."""


def normalize_clients(clients: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(client, level) pairs as they go into the config, or ValueError. A client is an
    IPv4/IPv6 address or network without host bits, written as ipaddress prints it."""
    out: list[tuple[str, str]] = []
    for client, level in clients:
        if not isinstance(client, str) or not isinstance(level, str) or level not in LEVELS:
            raise ValueError(f"bad access rule: {client!r} {level!r}")
        net = ipaddress.ip_network(client, strict=True)  # ValueError for anything else
        if getattr(net.network_address, "scope_id", None):
            raise ValueError(f"scoped IPv6 addresses are not allowed: {client!r}")
        text = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
        if not _CLIENT_CHARS.match(text):
            raise ValueError(f"bad access rule: {client!r}")
        if (text, level) not in out:
            out.append((text, level))
    return out


def render_export(export_id: int, share_id: str, path: str,
                  clients: list[tuple[str, str]]) -> str:
    """One EXPORT block; arguments already validated."""
    lines = [f"# vmflow share {share_id}: written by activities.storage.ganesha, do not edit",
             "EXPORT {",
             f"    Export_Id = {export_id};",
             f'    Path = "{path}";',
             f'    Pseudo = "{path}";',
             "    Protocols = 3, 4;",
             "    Transports = TCP;",
             "    SecType = sys;",
             "    # root on an allowed client stays root, as Manila's ganesha driver does:",
             "    # the share's owner sets ownership and modes inside it from a client",
             "    Squash = No_Root_Squash;",
             "    Access_Type = None;  # only the CLIENT blocks below get in",
             "    FSAL { Name = VFS; }"]
    # the first matching block wins, so where rules overlap the wider access (rw) does
    for level in ("rw", "ro"):
        nets = [c for c, lv in clients if lv == level]
        if nets:
            lines.append(f"    CLIENT {{ Clients = {', '.join(nets)}; "
                         f"Access_Type = {LEVELS[level]}; }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _export_id(text: str) -> int:
    m = _EXPORT_ID.search(text)
    if m is None:
        raise GaneshaError("export file without an Export_Id")
    return int(m.group(1))


def _share_id(share_id: str) -> str:
    try:
        ok = isinstance(share_id, str) and str(uuid.UUID(share_id)) == share_id
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"share id is not a canonical UUID: {share_id!r}")
    return share_id


async def _dbus_call(address: str, member: str, signature: str, body: list[Any]) -> list[Any]:
    bus = MessageBus(bus_address=address, bus_type=BusType.SYSTEM)
    try:
        await asyncio.wait_for(bus.connect(), DBUS_TIMEOUT_S)
    except Exception as e:  # no socket, refused, auth: the bus is not there for us
        raise GaneshaUnavailable(f"{member}: cannot reach ganesha's bus {address}: {e}") from e
    try:
        reply = await asyncio.wait_for(
            bus.call(Message(destination=gc.GANESHA_BUS, path=gc.EXPORT_MGR_PATH,
                             interface=gc.EXPORT_MGR_IFACE, member=member,
                             signature=signature, body=body)), DBUS_TIMEOUT_S)
    except TimeoutError as e:
        raise GaneshaUnavailable(f"{member}: no answer in {DBUS_TIMEOUT_S:.0f} s") from e
    finally:
        bus.disconnect()
    if reply is None:
        raise GaneshaUnavailable(f"{member}: no reply")
    if reply.message_type == MessageType.ERROR:
        text = f"{member}: {reply.error_name}: {' '.join(map(str, reply.body))}"
        raise (GaneshaUnavailable if reply.error_name in _UNREACHABLE else GaneshaError)(text)
    return list(reply.body)


class GaneshaExports:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = gc.exports_dir(settings)

    # ---- the interface the storage activities use ------------------------------------

    def ensure_export(self, share_id: str, path: Path,
                      clients: list[tuple[str, str]]) -> None:
        """The share exported at `path` to exactly `clients` ((ip or cidr, "rw"|"ro");
        [] = exported, nobody gets in). Live at once; repeating it is harmless."""
        sid = _share_id(share_id)
        where = self._path(path)
        rules = normalize_clients(clients)
        with self._locked():
            self._finish_removal(sid)  # a removal that stopped midway goes first
            conf = self._file(sid)
            old = conf.read_text() if conf.exists() else None
            export_id = _export_id(old) if old is not None else self._free_id()
            gc.write_atomic(conf, render_export(export_id, sid, where, rules))
            gc.write_main_config(self.settings)  # cheap; also mends a crash before it
            try:
                self._activate(conf, export_id)
            except GaneshaUnavailable:
                raise  # the file stands: ganesha loads it when it is back
            except GaneshaError:
                # ganesha refused the file: put back what it serves, so a restart agrees
                if old is None:
                    conf.unlink()
                    gc.write_main_config(self.settings)
                else:
                    gc.write_atomic(conf, old)
                raise

    def remove_export(self, share_id: str) -> None:
        """Unexported and its file gone; absent is success."""
        sid = _share_id(share_id)
        with self._locked():
            conf = self._file(sid)
            if conf.exists():
                # out of the main config first, but keep the id until ganesha lets go
                os.replace(conf, self._removing(sid))
            gc.write_main_config(self.settings)
            self._finish_removal(sid)

    def export_location(self, share_id: str, path: Path) -> str:
        _share_id(share_id)
        addr = self.settings.nfs_address
        host = f"[{addr}]" if ":" in addr else addr
        return f"{host}:{self._path(path)}"

    def reexport_all(self) -> list[str]:
        """Every export dropped and added again, so each resolves its Path anew. For the
        storage worker once it has mounted the shares at start: an export ganesha loaded
        before its mount still serves the directory under the mount (UpdateExport does
        not change that). Returns the share ids; clients see a blip."""
        done = []
        with self._locked():
            for conf in sorted(self.dir.glob("*.conf")):
                export_id = _export_id(conf.read_text())
                self._deactivate(export_id)
                self._activate(conf, export_id)
                done.append(conf.name.removesuffix(".conf"))
        return done

    # ---- also useful to callers and tests ---------------------------------------------

    def export_id(self, share_id: str) -> int | None:
        conf = self._file(_share_id(share_id))
        return _export_id(conf.read_text()) if conf.exists() else None

    def export_files(self) -> dict[str, tuple[int, float]]:
        """The shares with an export file here, also one whose removal stopped midway
        (remove_export finishes it): share id → (Export_Id, the file's mtime). The files
        are the truth ganesha is reconciled to. For the ledger reconciler."""
        found: dict[str, tuple[int, float]] = {}
        with self._locked():
            for pattern in ("*.conf.removing", "*.conf"):  # a .conf wins: it is served
                for conf in self.dir.glob(pattern):
                    sid = conf.name.split(".", 1)[0]
                    try:
                        found[_share_id(sid)] = (_export_id(conf.read_text()),
                                                 conf.stat().st_mtime)
                    except (ValueError, GaneshaError):  # not ours: never touched
                        continue
        return found

    def active_exports(self) -> dict[int, str]:
        """What ganesha serves now: Export_Id → path."""
        body = self._call("ShowExports", "", [])
        return {int(e[0]): str(e[1]) for e in body[1]}

    # ---- inside -----------------------------------------------------------------------

    def _file(self, sid: str) -> Path:
        return self.dir / f"{sid}.conf"

    def _removing(self, sid: str) -> Path:
        return self.dir / f"{sid}.conf.removing"  # not *.conf: never %include'd

    def _path(self, path: Path) -> str:
        """Our own mount path under storage_dir, in plain characters."""
        p = Path(path)
        text = str(p)
        root = self.settings.storage_dir
        if (not _PATH_CHARS.match(text) or ".." in p.parts or not p.is_relative_to(root)
                or p == root):
            raise ValueError(f"export path must be a plain path under {root}: {text!r}")
        return text

    def _free_id(self) -> int:
        used = {_export_id(f.read_text())
                for pattern in ("*.conf", "*.conf.removing") for f in self.dir.glob(pattern)}
        for export_id in range(EXPORT_ID_MIN, EXPORT_ID_MAX + 1):
            if export_id not in used:
                return export_id
        raise GaneshaError("no free Export_Id left")

    def _activate(self, conf: Path, export_id: int) -> None:
        args = [str(conf), f"EXPORT(Export_Id={export_id})"]
        try:
            self._call("AddExport", "ss", args)
        except GaneshaUnavailable:
            raise
        except GaneshaError as e:
            if "already active" not in str(e).lower():
                raise
            self._call("UpdateExport", "ss", args)

    def _deactivate(self, export_id: int) -> None:
        try:
            self._call("RemoveExport", "q", [export_id])
        except GaneshaUnavailable:
            raise
        except GaneshaError as e:
            if "export id not found" not in str(e).lower():  # gone already: fine
                raise

    def _finish_removal(self, sid: str) -> None:
        removing = self._removing(sid)
        if not removing.exists():
            return
        self._deactivate(_export_id(removing.read_text()))
        removing.unlink()

    def _call(self, member: str, signature: str, body: list[Any]) -> list[Any]:
        return asyncio.run(_dbus_call(gc.dbus_address(self.settings), member, signature, body))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One change at a time: activity threads here, and any other process."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with _thread_lock, (self.dir.parent / "exports.lock").open("w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

"""nfs-ganesha as vmflow's exporter, over real NFS: a real ganesha.nfsd (and rpcbind) in
the storage network namespace and its private dbus-daemon, started by the stack's own
functions on a temporary home, exporting plain directories to libnfs clients in network
namespaces bridged into that one (tests/nfs_clients.py): 10.254.0.4 gets rw, 10.254.0.5
ro, 10.254.0.6 no rule."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.storage.ganesha import EXPORT_ID_MIN, GaneshaError, GaneshaExports
from tests.nfs_clients import (
    SERVER,
    NfsError,
    nfs_clients,
    nfs_ls,
    nfs_read,
    nfs_url,
    nfs_write,
)
from vmflow import ganesha_config as gc
from vmflow import stack, stack_storage, storage_netns
from vmflow.settings import Settings

RW, RO, NONE = "10.254.0.4", "10.254.0.5", "10.254.0.6"
HELLO = b"hello from the server\n"


def _home() -> Path:
    # short: the bus socket's path must fit a unix socket address
    return Path(tempfile.mkdtemp(prefix="vmflow-nfs-", dir="/var/tmp"))


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    home = _home()
    s = Settings(home=home, host="unused", storage_host="nfstest", nfs_address=SERVER)
    try:
        stack.ensure_component(s, "ganesha-dbus")
        stack.ensure_component(s, "ganesha")
        yield s
    finally:
        stack.stop_storage(s)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def ns(settings: Settings) -> Iterator[dict[str, str]]:
    with nfs_clients([RW, RO, NONE], storage_netns.name(settings)) as spaces:
        yield spaces


@pytest.fixture
def exports(settings: Settings) -> Iterator[GaneshaExports]:
    g = GaneshaExports(settings)
    yield g
    for conf in list(g.dir.glob("*.conf")):  # each test starts with no export
        g.remove_export(conf.name.removesuffix(".conf"))


def new_share(s: Settings) -> tuple[str, Path]:
    """A plain directory where a share's mount would be, with one file in it."""
    sid = str(uuid.uuid4())
    path = s.storage_dir / "exports" / sid
    path.mkdir(parents=True)
    (path / "readme.txt").write_bytes(HELLO)
    return sid, path


def includes(s: Settings) -> list[str]:
    return [line for line in gc.main_config(s).read_text().splitlines()
            if line.startswith("%include")]


def refused(ns: str, path: Path, version: int) -> NfsError:
    """A client without access cannot read, and does not see the file in a listing."""
    with pytest.raises(NfsError) as err:
        nfs_read(ns, nfs_url(path, "readme.txt", version))
    with pytest.raises(NfsError):
        nfs_ls(ns, nfs_url(path, version=version))
    return err.value


def can_write(ns: str, path: Path, name: str, version: int = 3) -> None:
    data = f"{name} from {ns}\n".encode()
    nfs_write(ns, nfs_url(path, name, version), data)
    assert (path / name).read_bytes() == data  # the server's disk has it


def read_only(ns: str, path: Path, name: str, version: int = 3) -> None:
    assert nfs_read(ns, nfs_url(path, "readme.txt", version)) == HELLO
    with pytest.raises(NfsError, match="ROFS"):
        nfs_write(ns, nfs_url(path, name, version), b"must not land")
    assert not (path / name).exists()


# ---- access ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [3, 4])
def test_rw_client_writes_ro_client_reads_others_are_refused(
        settings: Settings, ns: dict[str, str], exports: GaneshaExports, version: int) -> None:
    sid, path = new_share(settings)
    exports.ensure_export(sid, path, [(RW, "rw"), (RO, "ro")])

    can_write(ns[RW], path, f"w4-v{version}.txt", version)
    assert nfs_read(ns[RW], nfs_url(path, "readme.txt", version)) == HELLO
    assert f"w4-v{version}.txt" in nfs_ls(ns[RW], nfs_url(path, version=version))
    read_only(ns[RO], path, f"w5-v{version}.txt", version)
    err = refused(ns[NONE], path, version)
    if version == 3:
        assert "MNT3ERR_ACCES" in str(err)  # the mount itself is denied

    conf = (exports.dir / f"{sid}.conf").read_text()
    assert f"CLIENT {{ Clients = {RW}; Access_Type = RW; }}" in conf
    assert f"CLIENT {{ Clients = {RO}; Access_Type = RO; }}" in conf
    assert includes(settings) == [f'%include "{exports.dir / sid}.conf"']
    assert exports.export_location(sid, path) == f"{SERVER}:{path}"


def test_updates_take_effect_at_once_and_keep_the_export_id(
        settings: Settings, ns: dict[str, str], exports: GaneshaExports) -> None:
    sid, path = new_share(settings)
    exports.ensure_export(sid, path, [(RW, "rw"), (RO, "ro")])
    export_id = exports.export_id(sid)
    assert export_id is not None
    can_write(ns[RW], path, "before.txt")

    exports.ensure_export(sid, path, [(RO, "ro")])  # deny .4
    refused(ns[RW], path, 3)
    refused(ns[RW], path, 4)
    read_only(ns[RO], path, "still-ro.txt")

    exports.ensure_export(sid, path, [(RW, "ro"), (RO, "rw")])  # levels swapped
    read_only(ns[RW], path, "now-ro.txt")
    can_write(ns[RO], path, "now-rw.txt")

    # a network rule, overlapping a host rule: the wider access wins
    exports.ensure_export(sid, path, [("10.254.0.0/24", "ro"), (RW, "rw")])
    read_only(ns[NONE], path, "net-ro.txt")
    can_write(ns[RW], path, "host-rw.txt")

    exports.ensure_export(sid, path, [])  # still exported, nobody gets in
    for client in (RW, RO, NONE):
        refused(ns[client], path, 3)
    assert exports.export_id(sid) == export_id
    assert exports.active_exports()[export_id] == str(path)


def test_export_ids_are_the_lowest_free_and_stable(
        settings: Settings, exports: GaneshaExports) -> None:
    (a, pa), (b, pb), (c, pc) = (new_share(settings) for _ in range(3))
    exports.ensure_export(a, pa, [])
    exports.ensure_export(b, pb, [(RW, "rw")])
    assert (exports.export_id(a), exports.export_id(b)) == (EXPORT_ID_MIN, EXPORT_ID_MIN + 1)
    exports.remove_export(a)
    exports.ensure_export(c, pc, [])
    exports.ensure_export(b, pb, [(RO, "ro")])
    assert (exports.export_id(c), exports.export_id(b)) == (EXPORT_ID_MIN, EXPORT_ID_MIN + 1)
    assert exports.active_exports() == {0: "/", EXPORT_ID_MIN: str(pc), EXPORT_ID_MIN + 1: str(pb)}


def test_a_path_ganesha_refuses_leaves_no_file_behind(
        settings: Settings, exports: GaneshaExports) -> None:
    sid = str(uuid.uuid4())
    missing = settings.storage_dir / "exports" / sid  # never made
    with pytest.raises(GaneshaError, match="InvalidFileContent"):
        exports.ensure_export(sid, missing, [(RW, "rw")])
    assert list(exports.dir.glob("*")) == []
    assert includes(settings) == []


# ---- restarts -------------------------------------------------------------------------


def test_restarts_keep_every_export_and_rule(
        settings: Settings, ns: dict[str, str], exports: GaneshaExports) -> None:
    (a, pa), (b, pb) = new_share(settings), new_share(settings)
    exports.ensure_export(a, pa, [(RW, "rw"), (RO, "ro")])
    exports.ensure_export(b, pb, [(RO, "rw")])
    before = exports.active_exports()

    def still_the_same(tag: str) -> None:
        assert exports.active_exports() == before
        can_write(ns[RW], pa, f"a-{tag}.txt")
        read_only(ns[RO], pa, f"a-ro-{tag}.txt", version=4)
        can_write(ns[RO], pb, f"b-{tag}.txt", version=4)
        refused(ns[RW], pb, 3)
        refused(ns[NONE], pa, 3)
        refused(ns[NONE], pb, 4)

    first = stack.pid_of(settings, "ganesha")
    stack.stop_component(settings, "ganesha")  # a clean stop and start
    with pytest.raises(NfsError):
        nfs_read(ns[RW], nfs_url(pa, "readme.txt"))
    second = stack.ensure_component(settings, "ganesha")
    assert second != first
    still_the_same("restart")

    stack.kill_component(settings, "ganesha")  # a crash, restarted as up() would
    assert stack.pid_of(settings, "ganesha") is None
    assert stack.ensure_component(settings, "ganesha") not in (first, second)
    still_the_same("crash")

    stack.kill_component(settings, "ganesha-dbus")  # a new bus takes a new ganesha
    ganesha = stack.pid_of(settings, "ganesha")
    stack.ensure_component(settings, "ganesha-dbus")
    assert stack.pid_of(settings, "ganesha") is None
    assert stack.ensure_component(settings, "ganesha") != ganesha
    still_the_same("new-bus")


def test_reexport_all_serves_what_was_mounted_after_the_export(
        settings: Settings, ns: dict[str, str], exports: GaneshaExports) -> None:
    """A cold start: ganesha loads an export before the storage worker has mounted the
    share there, and keeps serving the directory under the mount until re-exported."""
    sid, path = new_share(settings)
    exports.ensure_export(sid, path, [(RW, "rw")])
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "vmft-share", str(path)],
                   check=True)
    try:
        (path / "on-the-mount.txt").write_bytes(b"mounted\n")
        assert nfs_ls(ns[RW], nfs_url(path)) == ["readme.txt"]  # still the old directory
        assert exports.reexport_all() == [sid]
        for version in (3, 4):
            assert nfs_ls(ns[RW], nfs_url(path, version=version)) == ["on-the-mount.txt"]
        can_write(ns[RW], path, "lands-on-the-mount.txt", version=4)
    finally:
        try:
            exports.remove_export(sid)  # ganesha lets go before the unmount
        finally:
            subprocess.run(["umount", str(path)], check=True)
    assert not (path / "lands-on-the-mount.txt").exists()


def _ns_inode(path: str) -> int:
    return os.stat(path).st_ino


def _machine_links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                         check=True).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def test_ganesha_listens_in_its_namespace_and_stacks_run_side_by_side(
        settings: Settings, ns: dict[str, str], exports: GaneshaExports) -> None:
    ours, rpcbind = stack.pid_of(settings, "ganesha"), stack.pid_of(settings, "rpcbind")
    assert ours is not None and rpcbind is not None
    # the sockets are in the storage namespace, none in the machine's own
    assert ours in stack_storage.port_listeners(gc.NFS_PORT, settings)
    assert rpcbind in stack_storage.port_listeners(111, settings)
    assert ours not in stack_storage.port_listeners(gc.NFS_PORT)
    assert rpcbind not in stack_storage.port_listeners(111)
    assert _ns_inode(f"/proc/{ours}/ns/net") == _ns_inode(str(storage_netns.path(settings)))
    assert _ns_inode(f"/proc/{ours}/ns/net") != _ns_inode("/proc/self/ns/net")
    # storage_dir is shared into ganesha's mount namespace (test_reexport_all_... shows a
    # mount made after ganesha's start reaching its clients)
    assert "shared:" in next(line for line in Path("/proc/self/mountinfo").read_text()
                             .splitlines() if line.split()[4] == str(settings.storage_dir))

    home = _home()  # a second stack's storage side, at the same time
    other = Settings(home=home, host="unused", storage_host="nfsother", nfs_address=SERVER)
    try:
        stack.ensure_component(other, "ganesha-dbus")
        stack.ensure_component(other, "ganesha")
        assert storage_netns.name(other) != storage_netns.name(settings)
        assert stack_storage.ganesha_ok(other) and stack_storage.ganesha_ok(settings)
        sid, path = new_share(settings)
        exports.ensure_export(sid, path, [(RW, "rw")])
        can_write(ns[RW], path, "beside-another.txt")  # ours still serves our clients
    finally:
        stack.stop_storage(other)
        shutil.rmtree(home, ignore_errors=True)
    assert not storage_netns.exists(other)
    assert stack_storage.ganesha_ok(settings)
    assert [n for n in _machine_links() if n.startswith(("vmft", "vmflow-"))] == []


# ---- removal --------------------------------------------------------------------------


def test_remove_export_makes_the_path_unreachable(
        settings: Settings, ns: dict[str, str], exports: GaneshaExports) -> None:
    sid, path = new_share(settings)
    exports.ensure_export(sid, path, [(RW, "rw")])
    export_id = exports.export_id(sid)
    can_write(ns[RW], path, "before.txt")

    exports.remove_export(sid)
    refused(ns[RW], path, 3)
    refused(ns[RW], path, 4)
    assert export_id not in exports.active_exports()
    assert list(exports.dir.glob("*")) == []
    assert includes(settings) == []
    exports.remove_export(sid)  # absent is success
    exports.remove_export(str(uuid.uuid4()))


# ---- nothing un-normalized reaches the config ------------------------------------------

BAD_RULES = [
    ("10.0.0.1(rw,no_root_squash)", "rw"),
    ("10.0.0.1; Access_Type = RW", "rw"),
    ("10.0.0.1 }\nEXPORT { Export_Id = 7; Path = /; }", "rw"),
    ("10.0.0.0/8 ", "rw"),
    (" 10.0.0.1", "rw"),
    ("10.0.0.1/24", "rw"),  # host bits set
    ("fe80::1%eth0;x", "rw"),  # an IPv6 scope is free text
    ("*", "rw"),
    ("example.com", "rw"),
    ("", "rw"),
    (RW, "RW"),
    (RW, "rw;"),
    (RW, "no_root_squash"),
    (RW, ""),
]


@pytest.mark.parametrize("rule", BAD_RULES, ids=repr)
def test_bad_rules_raise_and_change_nothing(
        settings: Settings, ns: dict[str, str], exports: GaneshaExports,
        rule: tuple[str, str]) -> None:
    sid, path = new_share(settings)
    exports.ensure_export(sid, path, [(RW, "rw")])
    files = {p: p.read_bytes() for p in [*exports.dir.iterdir(), gc.main_config(settings)]}
    fresh, fresh_path = new_share(settings)

    with pytest.raises(ValueError):
        exports.ensure_export(sid, path, [(RO, "ro"), rule])
    with pytest.raises(ValueError):
        exports.ensure_export(fresh, fresh_path, [rule])

    assert {p: p.read_bytes() for p in [*exports.dir.iterdir(),
                                        gc.main_config(settings)]} == files
    assert exports.active_exports() == {0: "/", exports.export_id(sid): str(path)}
    can_write(ns[RW], path, "unchanged.txt")  # the live export kept its rules


@pytest.mark.parametrize("share_id", ["../../etc", "not-a-uuid", str(uuid.uuid4()).upper(), ""])
def test_bad_share_ids_raise_and_change_nothing(
        settings: Settings, exports: GaneshaExports, share_id: str) -> None:
    path = settings.storage_dir / "exports" / "x"
    path.mkdir(parents=True, exist_ok=True)
    with pytest.raises(ValueError):
        exports.ensure_export(share_id, path, [(RW, "rw")])
    with pytest.raises(ValueError):
        exports.remove_export(share_id)
    assert list(exports.dir.glob("*")) == []
    assert exports.active_exports() == {0: "/"}


@pytest.mark.parametrize("path", ["/etc", "/", "<storage_dir>", "<storage_dir>/../x",
                                  '<storage_dir>/quote"', "<storage_dir>/semi;colon",
                                  "<storage_dir>/new\nline", "<storage_dir>/sp ace",
                                  "relative/path"])
def test_paths_outside_storage_or_unusual_raise_and_change_nothing(
        settings: Settings, exports: GaneshaExports, path: str) -> None:
    where = Path(path.replace("<storage_dir>", str(settings.storage_dir)))
    sid = str(uuid.uuid4())
    with pytest.raises(ValueError):
        exports.ensure_export(sid, where, [(RW, "rw")])
    with pytest.raises(ValueError):
        exports.export_location(sid, where)
    assert list(exports.dir.glob("*")) == []
    assert exports.active_exports() == {0: "/"}

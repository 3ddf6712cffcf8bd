"""The storage side's network namespace on real processes: `down` leaves nothing (also
beside another stack's host holding a copy of the pool's mount), a
namespace made anew gets new processes, and a machine-wide rpcbind gets no
registration from ganesha (tests/storage/test_ganesha.py has ganesha's sockets in its
namespace and two stacks side by side)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.storage.share_pool import SharePool
from tests.nfs_clients import SERVER
from vmflow import stack, stack_storage, storage_netns
from vmflow.settings import Settings


def _home() -> Path:
    # short: the bus socket's path must fit a unix socket address
    return Path(tempfile.mkdtemp(prefix="vmflow-nfs-", dir="/var/tmp"))


def _ns_inode(path: str) -> int:
    return os.stat(path).st_ino


def gone(pid: int) -> bool:
    """Exited (a zombie our test process has not reaped yet counts)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return True


def test_down_stops_the_storage_side_and_removes_its_namespace() -> None:
    home = _home()
    s = Settings(home=home, host="unused", storage_host="nfsdown", nfs_address=SERVER)
    try:
        stack.ensure_component(s, "ganesha-dbus")
        ganesha = stack.ensure_component(s, "ganesha")
        rpcbind = stack.pid_of(s, "rpcbind")
        assert storage_netns.exists(s) and rpcbind is not None
        stack.down(s)
        assert not storage_netns.exists(s)
        assert gone(ganesha) and gone(rpcbind)
        assert stack.status(s)["storage_netns"]["exists"] is False
    finally:
        stack.stop_storage(s)
        shutil.rmtree(home, ignore_errors=True)


def test_a_namespace_made_anew_gets_a_new_rpcbind_and_ganesha() -> None:
    """Its name deleted under a running storage side: the processes in the orphaned
    namespace are stopped, and the next start is in the new one."""
    home = _home()
    s = Settings(home=home, host="unused", storage_host="nfsanew", nfs_address=SERVER)
    try:
        stack.ensure_component(s, "ganesha-dbus")
        old = stack.ensure_component(s, "ganesha"), stack.pid_of(s, "rpcbind")
        subprocess.run(["ip", "netns", "del", storage_netns.name(s)], check=True)
        stack_storage.ensure_netns(s)  # as up() does first
        assert all(gone(pid) for pid in old if pid is not None)
        new = stack.ensure_component(s, "ganesha"), stack.pid_of(s, "rpcbind")
        for pid in new:
            assert pid is not None
            assert _ns_inode(f"/proc/{pid}/ns/net") == _ns_inode(str(storage_netns.path(s)))
        assert stack_storage.ganesha_ok(s)
    finally:
        stack.stop_storage(s)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def machine_rpcbind_socket() -> Iterator[None]:
    """Something answering on the machine's rpcbind socket, as a machine-wide rpcbind
    does (the one running, if any, else a listener of ours, removed afterwards)."""
    path = Path(stack_storage.MACHINE_RPCBIND_SOCKET)
    if answers(path):
        yield
        return
    path.unlink(missing_ok=True)  # a dead rpcbind's socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(1)
        ours = path.stat().st_ino
        try:
            yield
        finally:
            if path.exists() and path.stat().st_ino == ours:  # not a real rpcbind's since
                path.unlink()


def answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def test_a_machine_rpcbind_gets_no_registration(machine_rpcbind_socket: None) -> None:
    """ganesha sees the machine's rpcbind socket masked, so it registers with its own
    namespace's rpcbind (NFSv3 clients look it up there), and the machine's keeps
    whatever other servers registered."""
    home = _home()
    s = Settings(home=home, host="unused", storage_host="nfsmasked", nfs_address=SERVER)
    try:
        stack.ensure_component(s, "ganesha-dbus")
        pid = stack.ensure_component(s, "ganesha")
        seen = os.stat(f"/proc/{pid}/root{stack_storage.MACHINE_RPCBIND_SOCKET}")
        assert not stat.S_ISSOCK(seen.st_mode)
        assert stack_storage.MOUNT_PROGRAM in stack_storage.registered_programs(s)
        # only the network namespace and its mount view differ: the same root
        assert os.stat(f"/proc/{pid}/root/").st_ino == os.stat("/").st_ino
    finally:
        stack.stop_storage(s)
        shutil.rmtree(home, ignore_errors=True)


def test_down_unmounts_a_pool_another_stacks_host_still_holds(
        storage_settings: Settings) -> None:
    """A host of another stack, started while this stack's pool was mounted, holds a
    copy of the pool's mount (vmflow.hostbed starts libvirtd in a private copy of the
    machine's mounts): the loop device stays, its file open through storage_dir's
    bind. Unmounting the storage side still leaves nothing of it mounted here, and
    the loop device goes once that copy does."""
    s = storage_settings
    stack_storage.share_storage_dir(s)
    pool = SharePool(s)
    pool.ensure()
    root = str(s.storage_dir.resolve())
    other = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "120"])
    try:
        for _ in range(100):  # until it runs in its own copy (bounded: 10 s)
            if (Path(f"/proc/{other.pid}/cmdline").read_bytes().startswith(b"sleep")
                    and str(pool.mount) in Path(f"/proc/{other.pid}/mountinfo").read_text()):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the other namespace never held the pool")
        stack_storage.unmount_storage(s)
        assert [p for p in stack_storage._mount_points()
                if p == root or p.startswith(root + "/")] == []
    finally:
        other.kill()
        other.wait()
    for _ in range(100):  # autoclear: the device goes with the last copy of the mount
        if not _loops(pool.image):
            break
        time.sleep(0.1)
    assert _loops(pool.image) == []


def _loops(image: Path) -> list[str]:
    out = subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True)
    return out.stdout.splitlines()

"""The snapshot copy runs at low CPU and I/O priority (so the guest keeps running while
the host reads, hashes and writes), in threads of its own: the worker's thread that
called it keeps its priority. Against a real qemu-nbd export; the host's dirty data
is written out before a freeze (syncfs)."""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from activities.hypervisor import backup_job, qcow2_stream
from tests.unit.test_qcow2_stream import export  # noqa: F401  (a fixture)
from vmflow.settings import Settings

IOPRIO_GET = {"x86_64": 252, "aarch64": 31}.get(platform.machine())
LOWEST_BE = (backup_job.IOPRIO_CLASS_BE << 13) | backup_job.IOPRIO_LOWEST


def priority() -> tuple[int, int | None]:
    """(nice, I/O priority) of the calling thread."""
    tid = threading.get_native_id()
    io = (None if IOPRIO_GET is None else
          ctypes.CDLL(None, use_errno=True).syscall(IOPRIO_GET, 1, tid))
    return os.getpriority(os.PRIO_PROCESS, tid), io


def test_background_work_and_the_threads_it_starts_run_at_low_priority() -> None:
    before = priority()
    seen: dict[str, tuple[int, int | None]] = {}

    def work() -> str:
        seen["work"] = priority()
        t = threading.Thread(target=lambda: seen.__setitem__("child", priority()))
        t.start()
        t.join()
        return "done"

    assert backup_job.in_background(work) == "done"
    for who in ("work", "child"):
        nice, io = seen[who]
        assert nice >= backup_job.COPY_NICE, who
        assert io in (None, LOWEST_BE), who
    assert IOPRIO_GET is None or seen["work"][1] == LOWEST_BE
    assert priority() == before  # the caller's thread is untouched


def test_an_error_in_background_work_reaches_the_caller() -> None:
    def work() -> None:
        raise ValueError("broken export")

    with pytest.raises(ValueError, match="broken export"):
        backup_job.in_background(work)


def test_the_copy_of_an_export_is_written_at_low_priority(
        export: tuple[Path, Path], tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """backup_job.copy: the real writer, watched (the priority of the thread that runs
    it), into a copy identical to the export."""
    disk, sock = export
    real_write = qcow2_stream.write
    seen: list[tuple[int, int | None]] = []

    def watched(*args: Any) -> tuple[int, str]:
        seen.append(priority())
        return real_write(*args)

    monkeypatch.setattr(qcow2_stream, "write", watched)
    root = backup_job.RootDisk("vda", str(disk), "qcow2", [])
    files = backup_job.JobFiles(tmp_path / "scratch.qcow2", sock.parent)
    out = tmp_path / "copy.qcow2"
    size, digest = backup_job.copy(Settings(home=tmp_path), root, files, out)
    data = out.read_bytes()
    assert (size, digest) == (len(data), hashlib.sha256(data).hexdigest())
    same = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(disk),
                           str(out)], capture_output=True, text=True)
    assert same.returncode == 0, same.stdout + same.stderr
    assert len(seen) == 1 and seen[0][0] >= backup_job.COPY_NICE
    assert priority()[0] < backup_job.COPY_NICE


def test_flush_host_writes_out_the_file_systems_dirty_data(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 4096)
    backup_job.flush_host(str(f))  # no error on a real file system
    with pytest.raises(FileNotFoundError):
        backup_job.flush_host(str(tmp_path / "missing"))

"""The snapshot copy's own qcow2 writer and NBD reader, against a real qemu-nbd: the
image it writes passes `qemu-img check`, holds exactly the export's data, and the
size and sha256 it reports are the file's."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.hypervisor import qcow2_stream
from activities.hypervisor.nbd_reader import Buffers, NbdError, NbdReader
from activities.hypervisor.qcow2_stream import CLUSTER, L2_ENTRIES, REFCOUNTS_PER_BLOCK

MiB = 2**20


def qemu_io(path: Path, *cmds: str) -> None:
    args = [a for c in cmds for a in ("-c", c)]
    subprocess.run(["qemu-io", "-f", "qcow2", *args, str(path)], check=True,
                   capture_output=True)


def serve(disk: Path, sock: Path) -> subprocess.Popen[bytes]:
    # persistent (-t): `qemu-img map` is a client too, and goes first
    proc = subprocess.Popen(["qemu-nbd", "-f", "qcow2", "-r", "-t", "-x", "vda",
                             f"--socket={sock}", str(disk)])
    deadline = time.monotonic() + 10
    while not sock.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "qemu-nbd did not start"
        time.sleep(0.02)
    return proc


@pytest.fixture
def export(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A 1.5 GiB disk (not a whole number of clusters) with data in L2 tables 0 and 2,
    across a cluster boundary, in its last partial cluster, and a written zero range."""
    disk = tmp_path / "src.qcow2"
    size = 3 * 2**29 - 4096
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), str(size)],
                   check=True)
    qemu_io(disk, "write -P 0xab 0 1M", f"write -P 0x11 {CLUSTER - 512} 1024",
            "write -z 100M 1M", f"write -P 0x22 {2**30 + 5 * MiB} 3M",
            f"write -P 0x33 {size - 8192} 8192")
    sock = tmp_path / "nbd.sock"
    proc = serve(disk, sock)
    yield disk, sock
    proc.terminate()
    proc.wait()


def copy(sock: Path, out: Path) -> tuple[int, str]:
    uri = f"nbd+unix:///vda?socket={sock}"
    m = subprocess.run(["qemu-img", "map", "-f", "raw", "--output=json", uri], check=True,
                       capture_output=True, text=True).stdout
    extents = [(e["start"], e["length"]) for e in json.loads(m)
               if e["data"] and not e["zero"]]
    with NbdReader(str(sock), "vda") as nbd:
        lo = qcow2_stream.layout(nbd.size, qcow2_stream.data_clusters(extents, nbd.size))
        return qcow2_stream.write(str(out), lo, nbd.read)


@pytest.fixture(params=["disk", "tmpfs"])
def out_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """Where the copy goes: a disk file system (O_DIRECT) or tmpfs (none), removed after."""
    if request.param == "disk":
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        assert subprocess.run(["stat", "-f", "-c", "%T", d], check=True,
                              capture_output=True, text=True).stdout.strip() == "tmpfs"
        yield Path(d)


def test_the_copy_is_a_clean_standalone_qcow2_with_the_same_data(
        export: tuple[Path, Path], out_dir: Path) -> None:
    """On a disk file system the copy is written with O_DIRECT; tmpfs has none."""
    disk, sock = export
    out = out_dir / "copy.qcow2"
    size, digest = copy(sock, out)
    data = out.read_bytes()
    assert (size, digest) == (len(data), hashlib.sha256(data).hexdigest())
    check = subprocess.run(["qemu-img", "check", "-f", "qcow2", str(out)],
                           capture_output=True, text=True)
    assert check.returncode == 0 and "No errors were found" in check.stdout, check.stdout
    same = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(disk),
                           str(out)], capture_output=True, text=True)
    assert same.returncode == 0, same.stdout + same.stderr
    info = subprocess.run(["qemu-img", "info", "-f", "qcow2", "--output=json", str(out)],
                          check=True, capture_output=True, text=True).stdout
    assert '"backing-filename"' not in info and '"virtual-size": 1610608640' in info
    # only what holds data was copied: 1 MiB + 1 cluster + 3 MiB + the last clusters
    assert size < 6 * MiB


def test_an_empty_disk_gives_a_valid_empty_image(tmp_path: Path) -> None:
    disk = tmp_path / "empty.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1G"], check=True)
    proc = serve(disk, tmp_path / "e.sock")
    try:
        out = tmp_path / "copy.qcow2"
        copy(tmp_path / "e.sock", out)
        check = subprocess.run(["qemu-img", "check", "-f", "qcow2", str(out)],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout
        assert out.stat().st_size == 4 * CLUSTER  # header, refcounts (table, block), L1
    finally:
        proc.terminate()
        proc.wait()


@pytest.mark.parametrize("n_data", [0, 1, REFCOUNTS_PER_BLOCK - 5, 3 * REFCOUNTS_PER_BLOCK])
def test_the_layout_counts_every_cluster_once(n_data: int) -> None:
    """Tables never overlap each other or the data, and the refcount blocks cover
    every cluster of the file, themselves included (checked at sizes no test writes)."""
    virtual = 64 * 2**30
    clusters = list(range(0, 2 * n_data, 2))  # every other cluster: many L2 tables
    lo = qcow2_stream.layout(virtual, clusters)
    assert lo.l1_size * L2_ENTRIES * CLUSTER >= virtual
    assert len(lo.l2_index) == len({c // L2_ENTRIES for c in clusters})
    edges = [0, lo.refcount_table, lo.refcount_blocks, lo.l1_table, lo.l2_tables, lo.data,
             lo.total_clusters * CLUSTER]
    assert edges == sorted(edges) and lo.refcount_blocks > lo.refcount_table
    assert lo.data + len(clusters) * CLUSTER == lo.total_clusters * CLUSTER
    assert lo.n_refcount_blocks * REFCOUNTS_PER_BLOCK >= lo.total_clusters
    assert (lo.n_refcount_blocks - 1) * REFCOUNTS_PER_BLOCK < lo.total_clusters


def test_a_failed_read_raises_and_names_the_export(
        export: tuple[Path, Path], tmp_path: Path) -> None:
    _, sock = export
    with pytest.raises(NbdError, match="refused export 'nope'"):
        NbdReader(str(sock), "nope")
    with NbdReader(str(sock), "vda") as nbd:
        past_end = iter([(nbd.size - CLUSTER, 2 * CLUSTER)])
        with pytest.raises(NbdError, match="failed: errno"):
            list(nbd.read(past_end, Buffers(2, 2 * CLUSTER), depth=1))
    out = tmp_path / "short.qcow2"
    lo = qcow2_stream.layout(2 * CLUSTER, [0])
    with pytest.raises(RuntimeError, match="short read"):
        qcow2_stream.write(str(out), lo,
                           lambda reads, bufs, _depth: ((bufs.get(), 1) for _ in reads))

"""The snapshot benchmark's host side: the disk's files evicted before each side, and
the two baselines on the same disk, Nova's pipeline (convert -t none, then the output
read again, hashed and stored, as Glance does) and the bare convert -t none."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

STORE_CHUNK = 2**20  # the Nova side's read, hash and write size


def run(*cmd: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)  # bounded
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr or r.stdout}")


def backing_chain(disk: Path) -> list[str]:
    out = subprocess.run(["qemu-img", "info", "-U", "--backing-chain", "--output=json",
                          "-f", "qcow2", str(disk)], capture_output=True, text=True, check=True)
    return [i["filename"] for i in json.loads(out.stdout)]


def evict(files: list[str]) -> None:
    """Drop these files' pages from the host's page cache, so neither side reads the
    disk from memory (the guest's own writes bypass it: cache=none); first let the
    disk finish what the other side left (the store's writes, the unlink of the last
    side's output), so each side starts on a quiet disk."""
    os.sync()
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def convert(disk: Path, out: Path) -> None:
    """qemu-img convert -t none of the running guest's disk, as Nova extracts a snapshot
    (nova/virt/images.py): O_DIRECT output, flushed; it flattens the backing chain as
    the snapshot does; -U because the running qemu holds the disk's write lock."""
    run("qemu-img", "convert", "-U", "-t", "none", "-f", "qcow2", "-O", "qcow2", str(disk),
        str(out))


def store(src: Path, dst: Path) -> str:
    """What Glance does with the upload: read it, sha256 it, write it into the store,
    here flushed as vmflow's copy is; its sha256."""
    digest = hashlib.sha256()
    with src.open("rb", buffering=0) as f, dst.open("wb", buffering=0) as g:
        while chunk := f.read(STORE_CHUNK):
            digest.update(chunk)
            g.write(chunk)
        os.fsync(g.fileno())
    return digest.hexdigest()


def nova_round(disk: Path, chain: list[str], work: Path) -> float:
    """Nova's pipeline for a snapshot, timed as a whole: convert -t none into a file,
    then read it again to hash and store it."""
    out, stored = work / "nova-convert.qcow2", work / "nova-store" / "image"
    stored.parent.mkdir(exist_ok=True)
    evict(chain)
    t0 = time.monotonic()
    convert(disk, out)
    store(out, stored)
    seconds = time.monotonic() - t0
    out.unlink()
    stored.unlink()
    return seconds


def bare_round(disk: Path, chain: list[str], work: Path) -> float:
    """The bare convert -t none: the copy alone, the physical floor."""
    out = work / "bare-convert.qcow2"
    evict(chain)
    t0 = time.monotonic()
    convert(disk, out)
    seconds = time.monotonic() - t0
    out.unlink()
    return seconds


def host_dirty_mib() -> float:
    """The host's dirty and writeback page cache, MiB (/proc/meminfo)."""
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return sum(int(info[k].split()[0]) for k in ("Dirty", "Writeback")) / 1024

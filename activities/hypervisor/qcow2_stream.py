"""A standalone qcow2 written front to back in a single pass, so its sha256 and size
are known the moment the last byte is written (no second read of the file to hash
it; see docs/decisions.md, "Snapshot copy").

Which clusters hold data is known before any data is read (the export's allocation
map), so every table can be laid out first: header, refcount table, refcount blocks,
L1, L2 tables, then the data clusters in guest order. Format: qcow2 version 3,
64 KiB clusters, 16-bit refcounts, no backing file, no extensions (the qcow2
specification, docs/interop/qcow2.txt in QEMU). Clusters the map calls holes stay
unallocated and read as zeros.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import mmap
import os
import queue
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from activities.hypervisor.nbd_reader import Buffers

log = logging.getLogger(__name__)

CLUSTER_BITS = 16
CLUSTER = 1 << CLUSTER_BITS
L2_ENTRIES = CLUSTER // 8  # one L2 table maps 512 MiB
REFCOUNTS_PER_BLOCK = CLUSTER // 2  # 16-bit refcounts
COPIED = 1 << 63  # refcount is exactly one: QEMU may write in place
HEADER_LENGTH = 104
READ_CHUNK = 2 * 2**20  # per NBD request; a multiple of CLUSTER
# bounded so the copy never has much in flight at once: QEMU serves the reads on the
# guest's own main loop, and the copy runs at low priority beside the guest
READ_DEPTH = 4  # NBD requests in flight
QUEUED = 4  # chunks read and waiting to be hashed and written


@dataclass(frozen=True)
class Layout:
    virtual_size: int
    clusters: list[int]  # guest cluster numbers holding data, ascending
    refcount_table: int  # file offsets
    refcount_blocks: int
    n_refcount_blocks: int
    l1_table: int
    l1_size: int
    l2_tables: int
    l2_index: list[int]  # L1 entries that have an L2 table, ascending
    data: int
    total_clusters: int


def _clusters_for(nbytes: int) -> int:
    return -(-nbytes // CLUSTER)


def data_clusters(extents: Iterable[tuple[int, int]], virtual_size: int) -> list[int]:
    """Guest clusters touched by the (offset, length) extents that hold data."""
    out: set[int] = set()
    for offset, length in extents:
        end = min(offset + length, virtual_size)
        if end > offset:
            out.update(range(offset >> CLUSTER_BITS, ((end - 1) >> CLUSTER_BITS) + 1))
    return sorted(out)


def layout(virtual_size: int, clusters: list[int]) -> Layout:
    l1_size = -(-_clusters_for(virtual_size) // L2_ENTRIES)
    l2_index = sorted({c // L2_ENTRIES for c in clusters})
    fixed = 1 + _clusters_for(l1_size * 8) + len(l2_index) + len(clusters)
    n_blocks = 1
    while True:  # the refcount structures count themselves
        table = _clusters_for(n_blocks * 8)
        total = fixed + table + n_blocks
        if -(-total // REFCOUNTS_PER_BLOCK) <= n_blocks:
            break
        n_blocks += 1
    refcount_table = CLUSTER
    refcount_blocks = refcount_table + table * CLUSTER
    l1_table = refcount_blocks + n_blocks * CLUSTER
    l2_tables = l1_table + _clusters_for(l1_size * 8) * CLUSTER
    data = l2_tables + len(l2_index) * CLUSTER
    return Layout(virtual_size, clusters, refcount_table, refcount_blocks, n_blocks,
                  l1_table, l1_size, l2_tables, l2_index, data, total)


def _padded(b: bytes) -> bytes:
    return b + bytes(-len(b) % CLUSTER)


def metadata(lo: Layout) -> Iterator[bytes]:
    """Every byte before the first data cluster, in file order."""
    yield _padded(struct.pack(
        ">4sIQIIQIIQQIIQQQQII", b"QFI\xfb", 3, 0, 0, CLUSTER_BITS, lo.virtual_size, 0,
        lo.l1_size, lo.l1_table, lo.refcount_table,
        (lo.refcount_blocks - lo.refcount_table) // CLUSTER, 0, 0, 0, 0, 0, 4,
        HEADER_LENGTH))
    yield _padded(struct.pack(f">{lo.n_refcount_blocks}Q", *(
        lo.refcount_blocks + i * CLUSTER for i in range(lo.n_refcount_blocks))))
    refcounts = bytearray(lo.n_refcount_blocks * CLUSTER)
    struct.pack_into(f">{lo.total_clusters}H", refcounts, 0, *([1] * lo.total_clusters))
    yield bytes(refcounts)
    l1 = [0] * lo.l1_size
    for i, idx in enumerate(lo.l2_index):
        l1[idx] = (lo.l2_tables + i * CLUSTER) | COPIED
    yield _padded(struct.pack(f">{lo.l1_size}Q", *l1))
    host = {c: lo.data + i * CLUSTER for i, c in enumerate(lo.clusters)}
    for idx in lo.l2_index:
        first = idx * L2_ENTRIES
        yield struct.pack(f">{L2_ENTRIES}Q", *(
            (host[c] | COPIED) if c in host else 0 for c in range(first, first + L2_ENTRIES)))


def data_reads(lo: Layout) -> Iterator[tuple[int, int]]:
    """(guest offset, length) reads covering the data clusters in file order: runs of
    consecutive clusters, cut at READ_CHUNK and at the end of the disk."""
    i, n = 0, len(lo.clusters)
    while i < n:
        j = i + 1
        while j < n and lo.clusters[j] == lo.clusters[j - 1] + 1 \
                and (j - i) * CLUSTER < READ_CHUNK:
            j += 1
        start = lo.clusters[i] * CLUSTER
        yield start, min(lo.clusters[j - 1] * CLUSTER + CLUSTER, lo.virtual_size) - start
        i = j


def _open(path: str) -> tuple[int, bool]:
    """The new file, with O_DIRECT where the file system has it: the copy goes to disk
    as it is written, so no page cache has to be found for it and the final fsync
    has nothing left to flush. Returns (fd, direct)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return os.open(path, flags | os.O_DIRECT, 0o600), True
    except OSError as e:
        if e.errno != errno.EINVAL:  # tmpfs, for one, has no O_DIRECT
            raise
    return os.open(path, flags, 0o600), False


Chunk = tuple[mmap.mmap, int]  # a buffer of the pool, and how much of it is data


def _stage(inbox: queue.Queue[Chunk | None], work: Callable[[memoryview], None],
           outbox: queue.Queue[Chunk | None] | None, buffers: Buffers,
           failed: list[BaseException]) -> None:
    """One stage of the line: `work` on each chunk, then pass it on; the last stage
    gives the buffer back. After a failure the line only drains, so that no stage
    and not the reader waits forever."""
    while (item := inbox.get()) is not None:
        try:
            if not failed:
                work(memoryview(item[0])[:item[1]])
        except BaseException as e:  # reported by the caller's thread
            failed.append(e)
        if outbox is None:
            buffers.put(item[0])
        else:
            outbox.put(item)
    if outbox is not None:
        outbox.put(None)


def write(path: str, lo: Layout,
          read: Callable[[Iterator[tuple[int, int]], Buffers, int], Iterator[Chunk]]
          ) -> tuple[int, str]:
    """Write the image to `path` (created, must not exist); returns (size, sha256).
    `read(reads, buffers, depth)` turns the reads of data_reads() into chunks in order,
    each in a buffer taken from `buffers`, at most `depth` in flight (the buffers are
    counted for READ_DEPTH). Reading, hashing and writing each run in a
    thread of their own (hashlib and the system calls let go of the GIL), so the copy
    takes about as long as the slowest of them."""
    digest = hashlib.sha256()
    to_hash: queue.Queue[Chunk | None] = queue.Queue(maxsize=QUEUED)
    to_write: queue.Queue[Chunk | None] = queue.Queue(maxsize=QUEUED)
    buffers = Buffers(READ_DEPTH + 2 * QUEUED + 3, READ_CHUNK)
    failed: list[BaseException] = []
    fd, direct = _open(path)

    def put_out(view: memoryview) -> None:
        while view:
            view = view[os.write(fd, view):]

    def put(data: bytes) -> None:
        for at in range(0, len(data), READ_CHUNK):
            buf = buffers.get()
            piece = data[at:at + READ_CHUNK]
            buf[:len(piece)] = piece
            to_hash.put((buf, len(piece)))

    line = [threading.Thread(target=_stage, daemon=True, name=f"qcow2-{name}",
                             args=(inbox, work, outbox, buffers, failed))
            for name, inbox, work, outbox in (("hash", to_hash, digest.update, to_write),
                                              ("write", to_write, put_out, None))]
    for t in line:
        t.start()
    try:
        try:
            for block in metadata(lo):
                put(block)
            chunks = read(data_reads(lo), buffers, READ_DEPTH)
            for (_, length), (buf, got) in zip(data_reads(lo), chunks, strict=True):
                if failed or got != length:
                    buffers.put(buf)
                    if failed:
                        break
                    raise RuntimeError(f"short read: {got} of {length} bytes")
                tail = -length % CLUSTER  # the last cluster, past the end of the disk
                buf[length:length + tail] = bytes(tail)
                to_hash.put((buf, length + tail))
        finally:
            to_hash.put(None)
            for t in line:
                t.join()
        if failed:
            raise failed[0]
        os.fsync(fd)  # with O_DIRECT only the file's own metadata is left to write
    finally:
        os.close(fd)
    size = os.stat(path).st_size
    if size != lo.total_clusters * CLUSTER:
        raise RuntimeError(f"wrote {size} bytes, expected {lo.total_clusters * CLUSTER}")
    log.debug("%s: %d bytes%s", path, size, " (O_DIRECT)" if direct else "")
    return size, digest.hexdigest()

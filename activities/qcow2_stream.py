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

import hashlib
import os
import queue
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

CLUSTER_BITS = 16
CLUSTER = 1 << CLUSTER_BITS
L2_ENTRIES = CLUSTER // 8  # one L2 table maps 512 MiB
REFCOUNTS_PER_BLOCK = CLUSTER // 2  # 16-bit refcounts
COPIED = 1 << 63  # refcount is exactly one: QEMU may write in place
HEADER_LENGTH = 104
READ_CHUNK = 4 * 2**20


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


def write(path: str, lo: Layout,
          read: Callable[[Iterator[tuple[int, int]]], Iterator[bytes | bytearray]]
          ) -> tuple[int, str]:
    """Write the image to `path` (created, must not exist); returns (size, sha256).
    `read` turns the reads of data_reads() into their data, in order. Hashing and
    writing run beside the reads, so the copy costs about as long as the slower side."""
    digest = hashlib.sha256()
    size = 0
    chunks: queue.Queue[bytes | bytearray | None] = queue.Queue(maxsize=8)
    failed: list[BaseException] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def sink() -> None:
        nonlocal size
        try:
            while (chunk := chunks.get()) is not None:
                if failed:
                    continue  # drain, so the reader never blocks on a full queue
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
                size += len(chunk)
        except BaseException as e:  # reported by the caller's thread
            failed.append(e)

    worker = threading.Thread(target=sink, name="qcow2-sink", daemon=True)
    worker.start()
    try:
        try:
            for block in metadata(lo):
                chunks.put(block)
            for (_, length), data in zip(data_reads(lo), read(data_reads(lo)), strict=True):
                if failed:
                    break
                if len(data) != length:
                    raise RuntimeError(f"short read: {len(data)} of {length} bytes")
                chunks.put(data)
                if length % CLUSTER:  # the last cluster, past the end of the disk
                    chunks.put(bytes(CLUSTER - length % CLUSTER))
        finally:
            chunks.put(None)
            worker.join()
        if failed:
            raise failed[0]
        os.fsync(fd)
    finally:
        os.close(fd)
    if size != lo.total_clusters * CLUSTER:
        raise RuntimeError(f"wrote {size} bytes, expected {lo.total_clusters * CLUSTER}")
    return size, digest.hexdigest()

"""Reads an NBD export (a backup job's point in time) over its unix socket: the
fixed-newstyle handshake, NBD_OPT_GO, and NBD_CMD_READ with simple replies, several
reads in flight, each into a buffer of a fixed set. Only what copying an export
needs (the NBD protocol document, doc/proto.md in the NBD project, is the
reference); qemu is the server.
"""

from __future__ import annotations

import contextlib
import mmap
import queue
import socket
import struct
from collections.abc import Iterator

NBDMAGIC = b"NBDMAGIC"
IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES = 1, 2
OPT_GO = 7
REP_ACK, REP_INFO = 1, 3
INFO_EXPORT = 0
CMD_READ, CMD_DISC = 0, 2
MAX_READ = 32 * 2**20  # qemu's NBD server refuses longer requests


class NbdError(RuntimeError):
    pass


class NbdReader:
    def __init__(self, socket_path: str, export: str, timeout: float = 60.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(socket_path)
        try:
            self.size = self._handshake(export)
        except BaseException:
            self.sock.close()
            raise

    def __enter__(self) -> NbdReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the server may have gone first
            self.sock.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_DISC, 0, 0, 0))
        self.sock.close()

    def _recv(self, n: int) -> bytearray:
        buf = bytearray(n)
        self._recv_into(memoryview(buf))
        return buf

    def _recv_into(self, view: memoryview) -> None:
        got, n = 0, len(view)
        while got < n:
            k = self.sock.recv_into(view[got:])
            if not k:
                raise NbdError("the NBD server closed the connection")
            got += k

    def _handshake(self, export: str) -> int:
        magic, opt, flags = struct.unpack(">8sQH", self._recv(18))
        if magic != NBDMAGIC or opt != IHAVEOPT or not flags & FLAG_FIXED_NEWSTYLE:
            raise NbdError("not a fixed-newstyle NBD server")
        self.sock.sendall(struct.pack(">I", flags & (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)))
        name = export.encode()
        data = struct.pack(">I", len(name)) + name + struct.pack(">H", 0)
        self.sock.sendall(struct.pack(">QII", IHAVEOPT, OPT_GO, len(data)) + data)
        size = None
        while True:
            magic, _, rtype, length = struct.unpack(">QIII", self._recv(20))
            payload = bytes(self._recv(length))
            if magic != OPT_REPLY_MAGIC:
                raise NbdError("bad option reply from the NBD server")
            if rtype & 0x80000000:
                raise NbdError(f"the NBD server refused export {export!r}: "
                               f"{payload.decode(errors='replace')}")
            if rtype == REP_INFO and struct.unpack(">H", payload[:2])[0] == INFO_EXPORT:
                size = struct.unpack(">Q", payload[2:10])[0]
            elif rtype == REP_ACK:
                break
        if size is None:
            raise NbdError("the NBD server did not say how large the export is")
        return int(size)

    def read(self, ranges: Iterator[tuple[int, int]], buffers: Buffers, depth: int
             ) -> Iterator[tuple[mmap.mmap, int]]:
        """(buffer, length) with the data of each (offset, length), in order, each in a
        buffer taken from `buffers` that the caller gives back; up to `depth` requests
        in flight (qemu may answer them out of order)."""
        pending: dict[int, tuple[int, int]] = {}
        done: dict[int, tuple[mmap.mmap, int]] = {}
        sent = wanted = 0
        ranges = iter(ranges)
        exhausted = False
        while True:
            while not exhausted and len(pending) + len(done) < depth:
                nxt = next(ranges, None)
                if nxt is None:
                    exhausted = True
                    break
                offset, length = nxt
                if not 0 < length <= min(MAX_READ, buffers.size):
                    raise NbdError(f"cannot read {length} bytes in one request")
                self.sock.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_READ, sent,
                                              offset, length))
                pending[sent] = nxt
                sent += 1
            if wanted in done:
                yield done.pop(wanted)
                wanted += 1
                continue
            if not pending:
                return
            magic, error, cookie = struct.unpack(">IIQ", self._recv(16))
            if magic != SIMPLE_REPLY_MAGIC or cookie not in pending:
                raise NbdError("bad reply from the NBD server")
            offset, length = pending.pop(cookie)
            if error:
                raise NbdError(f"reading {length} bytes at {offset} failed: errno {error}")
            buf = buffers.get()
            try:
                self._recv_into(memoryview(buf)[:length])
            except BaseException:
                buffers.put(buf)
                raise
            done[cookie] = (buf, length)


class Buffers:
    """A fixed set of page-aligned buffers (anonymous maps) used over and over: a
    copy touches the same few MiB of memory instead of fresh pages for every read,
    and O_DIRECT writes need the alignment."""

    def __init__(self, count: int, size: int):
        self.size = size
        self._free: queue.Queue[mmap.mmap] = queue.Queue()
        for _ in range(count):
            self._free.put(mmap.mmap(-1, size))

    def get(self) -> mmap.mmap:
        return self._free.get()

    def put(self, buf: mmap.mmap) -> None:
        self._free.put(buf)

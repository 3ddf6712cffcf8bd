"""The metadata server of one hypervisor host: `python -m` this module inside the host's
network namespace (activities/hypervisor/network/metadata.py starts and supervises it,
as dhcp.py does dnsmasq). Standard library only.

It listens on port 8775 once per guest network, each socket bound to that network's
bridge (SO_BINDTODEVICE), so the kernel tells which network a request came in on; the
host's nft rule redirects a guest's 169.254.169.254:80 to it. A request is answered
from the documents published for (that network, the packet's source address), never
from anything the guest sends: not a header, not a path segment. Nothing published
for the source: 404. The documents live in the networks' state dirs:

    <root>/<network id>/network.json         the network's spec (its vni: the bridge)
    <root>/<network id>/metadata/            present: the network has metadata
    <root>/<network id>/metadata/<ip>.json   one port's InstanceMetadata

A document is read from disk at each request, so publishing and withdrawing need no
signal; the set of networks is re-read every RESCAN_S (at once on SIGHUP), which also
rebinds a socket whose bridge was made again (a new ifindex).
"""

from __future__ import annotations

import argparse
import base64
import grp
import ipaddress
import json
import logging
import os
import pwd
import signal
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

PORT = 8775
DOCS = "metadata"
RESCAN_S = 1.0
REQUEST_TIMEOUT_S = 10.0
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
log = logging.getLogger("vmflow.metadata")

Answer = tuple[int, str, bytes]  # status, content type, body


def docs_dir(root: Path, network_id: str) -> Path:
    return root / network_id / DOCS


def doc_path(root: Path, network_id: str, ip: str) -> Path:
    """Only ever from a validated network id and the socket's peer address."""
    return docs_dir(root, network_id) / f"{ipaddress.IPv4Address(ip)}.json"


def lookup(root: Path, network_id: str, source: str) -> dict[str, Any] | None:
    try:
        raw = doc_path(root, network_id, source).read_text()
    except (FileNotFoundError, ValueError):
        return None  # nothing published for it (or not an IPv4 peer)
    doc: dict[str, Any] = json.loads(raw)
    return doc


def _text(lines: list[str]) -> Answer:
    return 200, "text/plain", "\n".join(lines).encode()


def _ec2(doc: dict[str, Any]) -> dict[str, str]:
    """EC2's /latest/meta-data/ keys with a value for this instance."""
    keys = {"ami-id": doc.get("ami_id", ""), "hostname": doc.get("hostname", ""),
            "instance-id": doc["instance_id"], "instance-type": doc.get("instance_type", ""),
            "local-hostname": doc.get("hostname", ""), "local-ipv4": doc["fixed_ip"],
            "placement/availability-zone": "nova"}
    if doc.get("public_ipv4"):
        keys["public-ipv4"] = doc["public_ipv4"]
    return keys


def _listing(keys: list[str], prefix: str) -> list[str]:
    """A directory's entries, subdirectories with a trailing slash, as EC2 lists them."""
    out: list[str] = []
    for k in keys:
        if k.startswith(prefix):
            head, sep, _ = k[len(prefix):].partition("/")
            entry = head + "/" if sep else head
            if entry not in out:
                out.append(entry)
    return sorted(out)


def answer(doc: dict[str, Any] | None, raw_path: str) -> Answer:
    """The response to GET raw_path for an instance's document (None: unknown source).
    Paths are compared with a fixed set: nothing in them is ever used to open a file."""
    if doc is None:
        return 404, "text/plain", b"no instance has this address on this network\n"
    path = raw_path.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    user_data = doc.get("user_data_b64")
    if path in ("", "/openstack"):
        return _text(["latest"])
    if path == "/openstack/latest":
        return _text(["meta_data.json", "network_data.json", *(["user_data"] if user_data
                                                                else [])])
    if path == "/openstack/latest/meta_data.json":
        return 200, "application/json", doc["meta_data_json"].encode()
    if path == "/openstack/latest/network_data.json":
        return 200, "application/json", doc["network_data_json"].encode()
    if path in ("/openstack/latest/user_data", "/latest/user-data"):
        if not user_data:
            return 404, "text/plain", b"no user data\n"
        return 200, "application/octet-stream", base64.b64decode(user_data)
    if path == "/latest":
        return _text(["meta-data/", *(["user-data"] if user_data else [])])
    ec2 = _ec2(doc)
    if path.startswith("/latest/meta-data"):
        key = path[len("/latest/meta-data"):].lstrip("/")
        if key in ec2:
            return _text([ec2[key]])
        entries = _listing(list(ec2), key + "/" if key else "")
        if entries:
            return _text(entries)
    return 404, "text/plain", b"not found\n"


class Handler(BaseHTTPRequestHandler):
    server: Listener
    timeout = REQUEST_TIMEOUT_S  # a guest that sends nothing holds a thread no longer
    server_version = "vmflow-metadata"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        source = self.client_address[0]
        doc = lookup(self.server.root, self.server.network_id, source)
        status, ctype, body = answer(doc, self.path)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (its signature)
        log.info("%s %s: " + format, self.server.network_id, self.client_address[0], *args)


class Listener(socketserver.ThreadingTCPServer):
    """Port PORT on one network's bridge (device None: any, for tests on loopback)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path, network_id: str, address: tuple[str, int],
                 device: str | None) -> None:
        self.root, self.network_id = root, network_id
        super().__init__(address, Handler, bind_and_activate=False)
        try:
            if device is not None:
                self.socket.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, device.encode())
            self.server_bind()
            self.server_activate()
        except OSError:
            self.server_close()
            raise

    def start(self) -> threading.Thread:
        t = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                             name=f"metadata-{self.network_id}", daemon=True)
        t.start()
        return t

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def wanted(root: Path) -> dict[str, str]:
    """network id -> its bridge, for every network with a metadata dir."""
    out: dict[str, str] = {}
    try:
        dirs = sorted(root.iterdir())
    except OSError as e:  # not made yet, or not readable to the server's user
        log.warning("cannot list %s: %s", root, e)
        return out
    for d in dirs:
        try:
            if (d / DOCS).is_dir():
                vni = int(json.loads((d / "network.json").read_text())["vni"])
                out[d.name] = f"vmfbr{vni}"
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def _ifindex(device: str) -> int | None:
    try:
        return socket.if_nametoindex(device)
    except OSError:
        return None


class Server:
    """One Listener per network with metadata, kept in step with the state dir."""

    def __init__(self, root: Path, port: int = PORT) -> None:
        self.root, self.port = root, port
        self.listeners: dict[str, tuple[int, Listener]] = {}
        self.stopping = threading.Event()
        self.wake = threading.Event()

    def sync(self) -> None:
        want = wanted(self.root)
        for nid, (index, listener) in list(self.listeners.items()):
            if nid not in want or _ifindex(want[nid]) != index:
                listener.stop()
                del self.listeners[nid]
                log.info("network %s: stopped listening", nid)
        for nid, device in want.items():
            found = _ifindex(device)
            if nid in self.listeners or found is None:
                continue  # no bridge (yet): tried again at the next scan
            try:
                listener = Listener(self.root, nid, ("0.0.0.0", self.port), device)
            except OSError as e:
                log.warning("network %s: cannot listen on %s: %s", nid, device, e)
                continue
            listener.start()
            self.listeners[nid] = (found, listener)
            log.info("network %s: listening on %s:%d", nid, device, self.port)

    def run(self) -> None:
        while not self.stopping.is_set():
            self.sync()
            self.wake.wait(RESCAN_S)
            self.wake.clear()
        for _index, listener in self.listeners.values():
            listener.stop()


def _daemonize(pid_file: Path, log_file: Path) -> None:
    """Detach as dnsmasq does: the starting command returns once the pid file is
    written, and no descriptor of the caller stays open (it may be reading our output)."""
    read_end, write_end = os.pipe()
    if os.fork() > 0:
        os.close(write_end)
        ok = os.read(read_end, 1) == b"1"
        os._exit(0 if ok else 1)
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    out = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    pid_file.write_text(f"{os.getpid()}\n")
    os.write(write_end, b"1")
    os.close(write_end)


def _drop_privileges(user: str) -> None:
    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(grp.getgrgid(entry.pw_gid).gr_gid)
    os.setuid(entry.pw_uid)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, required=True, help="the host's networks dir")
    p.add_argument("--pid-file", type=Path, required=True)
    p.add_argument("--log-file", type=Path, required=True)
    p.add_argument("--port", type=int, default=PORT)
    p.add_argument("--user", default="nobody", help="drop to this user once started")
    args = p.parse_args(argv)
    server = Server(args.root, args.port)

    def stop(*_: object) -> None:
        server.stopping.set()
        server.wake.set()

    # before the pid file exists: whoever reads it may signal at once (SIGHUP's
    # default would end the process)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, lambda *_: server.wake.set())
    _daemonize(args.pid_file, args.log_file)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    _drop_privileges(args.user)
    log.info("metadata server started, pid %d, root %s", os.getpid(), args.root)
    server.run()
    log.info("metadata server stopped")


if __name__ == "__main__":
    main()

"""The stack's process primitives: each component is a background process with
`$VMFLOW_HOME/run/<name>.pid` and `$VMFLOW_HOME/log/<name>.log`. Here are those files,
how a pid is known to still be ours (/proc cmdline and environment), starting a
component, signalling and stopping it, waiting for it to be healthy, the per-home lock
and the tail of a log for errors. What the components are is vmflow.stack's business:
the functions that check a pid take the Component to check it against.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vmflow.settings import Settings, get_settings

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.prefix) / "bin"  # the project venv: `temporal` and `python` live here

STOP_TIMEOUT = 10.0

# our own children, so that a killed one is reaped instead of lingering as a zombie
_children: dict[int, subprocess.Popen[bytes]] = {}


class StackError(RuntimeError):
    pass


# Ports this process handed out, each with an open, flock'd file under PORT_LOCKS:
# between free_port() and a child binding the port, neither this process nor another
# one picking at the same time (make test runs tiers side by side) hands it out again.
PORT_LOCKS = Path("/var/tmp/vmflow-ports")
_held_ports: dict[int, int] = {}
_rng = random.SystemRandom()  # no seeding by a test library repeats a sequence


def free_port() -> int:
    """A TCP port nobody listens on, below the kernel's ephemeral range. One found by
    binding to port 0 comes from that range, and between finding it and a child binding
    it, any process's outgoing connection or random listener (Temporal's dev server
    opens several) can take it: seen in CI as an API that could not bind."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    PORT_LOCKS.mkdir(mode=0o1777, exist_ok=True)
    for _ in range(500):
        port = _rng.randrange(10000, max(low, 10001))
        if port in _held_ports or not _claim(port):
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise StackError("no free TCP port below the ephemeral range")


def _claim(port: int) -> bool:
    """Holds PORT_LOCKS/<port> for the rest of this process's life, unless another
    live process holds it (the kernel drops a dead one's lock)."""
    fd = os.open(PORT_LOCKS / str(port), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held_ports[port] = fd
    if len(_held_ports) > 500:  # the oldest was bound long ago; keep the fds bounded
        os.close(_held_ports.pop(next(iter(_held_ports))))
    return True


@dataclass(frozen=True)
class Component:
    name: str
    argv: tuple[str, ...]
    # tokens that must all appear in /proc/<pid>/cmdline for a pid to be this component
    markers: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


def resolve(settings: Settings | None) -> Settings:
    """Children run in the repo, so a relative home would mean another place there."""
    s = settings or get_settings()
    return s if s.home.is_absolute() else s.model_copy(update={"home": s.home.absolute()})


def stack_env(s: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The launcher's environment with every VMFLOW_* setting taken from `s`, so a
    stack started from a Settings object (tests) gets the same view in every child."""
    env = dict(os.environ)
    for field in Settings.model_fields:
        key = "VMFLOW_" + field.upper()
        value = getattr(s, field)
        if value is None:
            env.pop(key, None)
        elif isinstance(value, list | dict):
            env[key] = json.dumps(value)
        else:
            env[key] = str(value)
    env["VMFLOW_DATABASE_URL"] = s.db_url  # resolved, so children agree on the file
    env["PYTHONUNBUFFERED"] = "1"  # logs appear as they happen
    env.update(extra or {})
    return env


# ---- pid and log files, /proc ---------------------------------------------------------


def pid_file(s: Settings, name: str) -> Path:
    return s.run_dir / f"{name}.pid"


def log_file(s: Settings, name: str) -> Path:
    return s.log_dir / f"{name}.log"


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def cmdline(pid: int) -> list[str]:
    """Empty for a dead process or a zombie (whose cmdline the kernel has dropped). A
    process that is just exec'ing shows an empty cmdline for a few ms: wait that out."""
    for _ in range(50):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return []
        if raw or _state(pid) in ("Z", "X"):
            break
        time.sleep(0.01)
    return raw.decode(errors="replace").split("\0")[:-1]


def home_of(pid: int) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in environ:
        if item.startswith(b"VMFLOW_HOME="):
            return item[len("VMFLOW_HOME="):].decode(errors="replace")
    return None


def is_ours(s: Settings, pid: int, comp: Component | None) -> bool:
    """Alive, started for this VMFLOW_HOME, and (if known) running this component:
    a pid file can outlive its process and the pid be reused by something else."""
    child = _children.get(pid)
    if child is not None:
        if child.poll() is not None:  # our own child, now reaped
            del _children[pid]
            return False
        # our own live child: /proc may show it between two execs of its chain
        # (nsenter, unshare, sh, then the program) with no cmdline or environ yet
        cmd = cmdline(pid)
        return comp is None or not cmd or all(m in cmd for m in comp.markers)
    cmd = cmdline(pid)
    if not cmd or home_of(pid) != str(s.home):
        return False
    return comp is None or all(m in cmd for m in comp.markers)


def running_pid(s: Settings, name: str, comp: Component | None) -> int | None:
    """The pid in `name`'s pid file if that process is still ours and (if `comp` is
    given) that component; None for a name no longer configured checks only the home."""
    pid = read_pid(pid_file(s, name))
    if pid is not None and is_ours(s, pid, comp):
        return pid
    return None


# ---- start, signal, stop --------------------------------------------------------------


def spawn(s: Settings, comp: Component) -> int:
    """Start `comp` in the background (its own session, output to its log) and record
    its pid file; returns the pid."""
    s.run_dir.mkdir(parents=True, exist_ok=True)
    s.log_dir.mkdir(parents=True, exist_ok=True)
    with log_file(s, comp.name).open("ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"--- {stamp} vmflow.stack: {' '.join(comp.argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(comp.argv, cwd=REPO, env=stack_env(s, dict(comp.env)),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    _children[proc.pid] = proc
    pid_file(s, comp.name).write_text(f"{proc.pid}\n")
    print(f"  {comp.name}: started (pid {proc.pid})", flush=True)
    return proc.pid


def signal_group(pid: int, sig: int) -> None:
    """The whole process group: each component leads its own session, and its
    children (uvicorn, qemu-img) must go with it."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_gone(s: Settings, pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_ours(s, pid, None):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def terminate(s: Settings, name: str, comp: Component | None) -> None:
    """SIGTERM (SIGKILL after STOP_TIMEOUT) and wait, then drop the pid file; nothing
    but that if it is not running."""
    pid = running_pid(s, name, comp)
    if pid is not None:
        signal_group(pid, signal.SIGTERM)
        if not wait_gone(s, pid, STOP_TIMEOUT):
            print(f"  {name}: no exit {STOP_TIMEOUT:.0f} s after SIGTERM, killing", flush=True)
            signal_group(pid, signal.SIGKILL)
            wait_gone(s, pid, 5.0)
        print(f"  {name}: stopped (pid {pid})", flush=True)
    pid_file(s, name).unlink(missing_ok=True)


@contextmanager
def lock(s: Settings) -> Iterator[None]:
    """One `up`/`down` at a time per home, so two racing `make up` don't both start."""
    s.run_dir.mkdir(parents=True, exist_ok=True)
    with (s.run_dir / "stack.lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


# ---- health and failure ---------------------------------------------------------------


def run_ok(argv: list[str], timeout: float = 15.0) -> subprocess.CompletedProcess[str] | None:
    """A probe command's result if it ran and exited 0, else None."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r if r.returncode == 0 else None


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def fail(s: Settings, name: str, why: str, log: Path | None = None) -> StackError:
    """The error to raise for a component that failed, after printing its log's tail."""
    log = log or log_file(s, name)
    print(f"vmflow: {name} {why}; last lines of {log}:\n{tail(log)}", file=sys.stderr,
          flush=True)
    return StackError(f"{name} {why} (see {log})")


def wait_healthy(s: Settings, name: str, comp: Component | None, check: Callable[[], bool],
                 timeout: float) -> None:
    """Until `check()` holds; fails at once if the process dies, or after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        if running_pid(s, name, comp) is None:
            raise fail(s, name, "exited during start-up")
        if check():
            return
        if time.monotonic() > deadline:
            raise fail(s, name, f"not healthy after {timeout:.0f} s")
        time.sleep(0.2)

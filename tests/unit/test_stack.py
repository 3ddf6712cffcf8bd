"""The stack launcher's process bookkeeping, with real processes: stand-in components
(python sleeping) for the pid-file logic, and a real Temporal dev server for the one
component whose flags matter. The full stack is exercised by `make up` and the
integration tier."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vmflow import ganesha_config as gc
from vmflow import processes, stack, storage_netns
from vmflow.processes import REPO, free_port
from vmflow.settings import Settings

SLEEP = "import sys, time; time.sleep(600)"



def fake(name: str, code: str = SLEEP) -> stack.Component:
    # the name as an argument makes each stand-in's cmdline its own
    return stack.Component(name, (sys.executable, "-c", code, name), markers=("-c", name))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", api_port=18999, temporal_address="127.0.0.1:17999",
                    temporal_ui_port=18998, host="unit", hosts=1)


@pytest.fixture
def fake_stack(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    """up() over stand-ins, with the machine-wide steps and health checks stubbed."""
    comps = {"temporal": fake("temporal"), "control": fake("control"),
             "hypervisor": fake("hypervisor"), "api": fake("api")}
    monkeypatch.setattr(stack, "components", lambda s: list(comps.values()))
    for step in ("ensure_libvirt", "ensure_guest", "_bootstrap"):
        monkeypatch.setattr(stack, step, lambda s: None)
    monkeypatch.setattr(stack, "libvirt_ok", lambda: True)
    monkeypatch.setattr(stack, "temporal_ok", lambda s: True)
    monkeypatch.setattr(stack, "api_ok", lambda s: True)
    monkeypatch.setattr(stack, "WORKER_GRACE", 0.3)
    yield comps
    stack.down(settings)


def pids(s: Settings, names: list[str]) -> dict[str, int | None]:
    return {n: stack.pid_of(s, n) for n in names}


# ---- environment and layout -----------------------------------------------------------


def test_env_comes_from_the_settings_object(settings: Settings,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMFLOW_API_PORT", "1")  # the launcher's own env loses to settings
    monkeypatch.setenv("VMFLOW_SOMETHING_ELSE", "kept")
    env = stack.stack_env(settings, {"VMFLOW_HOST": "h2"})
    assert env["VMFLOW_HOME"] == str(settings.home)
    assert env["VMFLOW_API_PORT"] == "18999"
    assert env["VMFLOW_TEMPORAL_ADDRESS"] == "127.0.0.1:17999"
    assert env["VMFLOW_TEMPORAL_UI_PORT"] == "18998"
    assert env["VMFLOW_HOSTS"] == "1"
    assert env["VMFLOW_DOMAIN_PREFIX"] == settings.domain_prefix
    assert env["VMFLOW_GUEST_CACHE"] == str(settings.guest_cache)
    assert env["VMFLOW_DATABASE_URL"] == f"sqlite:///{settings.home / 'vmflow.db'}"
    assert env["VMFLOW_HOST"] == "h2"
    assert env["VMFLOW_SOMETHING_ELSE"] == "kept"
    assert env["PATH"]
    # a child reading its settings from this env sees the same stack
    for key, value in env.items():
        if key.startswith("VMFLOW_"):
            monkeypatch.setenv(key, value)
    child = Settings()
    assert child.db_url == settings.db_url and child.base_url == settings.base_url
    assert child.host == "h2" and child.guest_cache == settings.guest_cache


def test_components_and_hypervisor_names(settings: Settings) -> None:
    names = [c.name for c in stack.components(settings)]
    assert names == ["temporal", "control", "hypervisor", "rpcbind", "ganesha-dbus", "ganesha",
                     "storage", "api"]
    bus = f"unix:path={settings.home}/storage/unit/ganesha/dbus.sock"
    by_name = {c.name: c for c in stack.components(settings)}
    assert dict(by_name["ganesha"].env) == dict(by_name["storage"].env) == {
        "DBUS_SYSTEM_BUS_ADDRESS": bus}
    ganesha = by_name["ganesha"].argv
    assert "-F" in ganesha  # foreground: the pid we record is ganesha's own
    # ganesha and its rpcbind listen in the storage namespace, nowhere else
    netns = f"--net=/run/netns/{storage_netns.name(settings)}"
    own_mounts = ("unshare", "--mount", "--propagation", "slave")
    for name in ("ganesha", "rpcbind"):  # and a mount namespace of their own, a slave
        assert by_name[name].argv[:6] == ("nsenter", netns, *own_mounts)
    assert "/usr/bin/ganesha.nfsd" in ganesha
    assert ganesha[ganesha.index("-f") + 1] == f"{settings.home}/storage/unit/ganesha/ganesha.conf"
    assert ganesha[ganesha.index("-L") + 1] == str(settings.log_dir / "ganesha.log")
    temporal = stack.components(settings)[0].argv
    for flag, value in [("--port", "17999"), ("--ui-port", "18998"), ("--ip", "127.0.0.1"),
                        ("--db-filename", str(settings.home / "temporal.db"))]:
        assert temporal[temporal.index(flag) + 1] == value
    assert "VmflowResource=Keyword" in temporal and "--headless" not in temporal

    three = settings.model_copy(update={"hosts": 3})
    hvs = [c for c in stack.components(three) if c.name.startswith("hypervisor")]
    assert [c.name for c in hvs] == ["hypervisor", "hypervisor-unit-2", "hypervisor-unit-3"]
    assert [dict(c.env)["VMFLOW_HOST"] for c in hvs] == ["unit", "unit-2", "unit-3"]


# ---- pid files ------------------------------------------------------------------------


def test_pid_of_needs_a_live_process_of_this_home_and_component(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    comp = fake("control")
    monkeypatch.setattr(stack, "components", lambda s: [comp])
    assert stack.pid_of(settings, "control") is None  # no pid file

    pid = processes.spawn(settings, comp)
    try:
        assert processes.pid_file(settings, "control").read_text().strip() == str(pid)
        assert stack.pid_of(settings, "control") == pid
        assert (settings.log_dir / "control.log").read_text().startswith("--- ")
        # seen from another process: through /proc, not our Popen handle
        processes._children.pop(pid)
        assert stack.pid_of(settings, "control") == pid
        # the same process is not this component under another name
        processes.pid_file(settings, "api").write_text(f"{pid}\n")
        monkeypatch.setattr(stack, "components", lambda s: [comp, fake("api")])
        assert stack.pid_of(settings, "api") is None
        # nor a component of another home
        other = settings.model_copy(update={"home": settings.home.parent / "other"})
        other.run_dir.mkdir(parents=True)
        processes.pid_file(other, "control").write_text(f"{pid}\n")
        assert stack.pid_of(other, "control") is None
    finally:
        subprocess.run(["kill", "-9", str(pid)])

    # a pid file left behind, whose pid now belongs to someone else (us)
    processes.pid_file(settings, "control").write_text(f"{os.getpid()}\n")
    assert stack.pid_of(settings, "control") is None
    processes.pid_file(settings, "control").write_text("garbage")
    assert stack.pid_of(settings, "control") is None


def test_our_own_live_child_is_ours_whatever_proc_shows(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the execs of a component's chain (nsenter, unshare, sh, the program)
    /proc can show no cmdline or environ: the child we started is judged by its exit
    status. Here its environ has no VMFLOW_HOME at all (env -i)."""
    comp = stack.Component("control", ("env", "-i", sys.executable, "-c", SLEEP, "control"),
                           markers=("-c", "control"))
    monkeypatch.setattr(stack, "components", lambda s: [comp])
    pid = processes.spawn(settings, comp)
    try:
        deadline = time.monotonic() + 10
        while b"VMFLOW_HOME=" in Path(f"/proc/{pid}/environ").read_bytes():
            assert time.monotonic() < deadline, "env -i never exec'd"
            time.sleep(0.05)
        assert stack.pid_of(settings, "control") == pid  # our child: alive, so ours
        child = processes._children.pop(pid)
        assert stack.pid_of(settings, "control") is None  # another process: /proc says no
        processes._children[pid] = child
        assert processes.is_ours(settings, pid, fake("api")) is False  # another component
    finally:
        subprocess.run(["kill", "-9", str(pid)])
    deadline = time.monotonic() + 10
    while stack.pid_of(settings, "control") is not None:  # reaped: gone
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_kill_component_and_stop(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    stubborn = fake("control", "import signal, time; signal.signal(signal.SIGTERM, "
                               "signal.SIG_IGN); time.sleep(600)")
    monkeypatch.setattr(stack, "components", lambda s: [stubborn, fake("api")])
    monkeypatch.setattr(processes, "STOP_TIMEOUT", 0.5)
    api = processes.spawn(settings, fake("api"))
    assert stack.kill_component(settings, "api") == api
    assert stack.pid_of(settings, "api") is None
    assert stack.kill_component(settings, "api") is None

    control = processes.spawn(settings, stubborn)
    time.sleep(0.3)  # let it install its SIGTERM handler
    stack.down(settings)  # SIGTERM is ignored: killed after STOP_TIMEOUT
    assert stack.pid_of(settings, "control") is None
    assert not Path(f"/proc/{control}/cmdline").exists() or not Path(
        f"/proc/{control}/cmdline").read_bytes()
    assert list(settings.run_dir.glob("*.pid")) == []


# ---- up / down ------------------------------------------------------------------------


def test_up_is_idempotent_and_restarts_only_what_died(settings: Settings, fake_stack) -> None:
    names = list(fake_stack)
    stack.up(settings)
    first = pids(settings, names)
    assert all(first.values())

    stack.up(settings)  # nothing to do
    assert pids(settings, names) == first

    stack.kill_component(settings, "hypervisor")
    assert stack.pid_of(settings, "hypervisor") is None
    stack.up(settings)
    again = pids(settings, names)
    assert again["hypervisor"] not in (None, first["hypervisor"])
    assert {n: p for n, p in again.items() if n != "hypervisor"} == {
        n: p for n, p in first.items() if n != "hypervisor"}

    st = stack.status(settings)
    assert {n: c["running"] for n, c in st["components"].items()} == dict.fromkeys(names, True)
    assert st["admin_token_file"] == str(settings.home / "admin-token")


def test_down_stops_everything_including_leftovers(settings: Settings, fake_stack,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    stack.up(settings)
    # a second hypervisor from an earlier VMFLOW_HOSTS=2 is no longer configured
    extra = processes.spawn(settings, stack.Component("hypervisor-unit-2",
                                                      (sys.executable, "-c", SLEEP), ()))
    stack.down(settings)
    assert list(settings.run_dir.glob("*.pid")) == []
    assert all(p is None for p in pids(settings, list(fake_stack)).values())
    assert processes.is_ours(settings, extra, None) is False
    stack.down(settings)  # again: nothing to stop, no error


def test_a_component_that_dies_at_start_is_reported(settings: Settings, fake_stack,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    fake_stack["control"] = fake("control", "import sys; sys.exit('cannot connect')")
    with pytest.raises(stack.StackError, match="control exited during start-up"):
        stack.up(settings)
    assert "cannot connect" in capsys.readouterr().err  # the tail of its log


def test_unhealthy_component_times_out(settings: Settings, fake_stack,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack, "api_ok", lambda s: False)
    monkeypatch.setattr(stack, "API_TIMEOUT", 0.5)
    with pytest.raises(stack.StackError, match="api not healthy"):
        stack.up(settings)


# ---- the real Temporal component ------------------------------------------------------


def test_temporal_restarts_on_its_db_with_the_search_attribute_flags(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, temporal_address=f"127.0.0.1:{free_port()}",
                 temporal_ui_port=free_port())
    temporal = stack.components(s)[0]
    try:
        for _ in range(2):  # fresh DB, then the same DB with the flags again
            processes.spawn(s, temporal)
            processes.wait_healthy(s, "temporal", temporal, lambda: stack.temporal_ok(s), 30)
            out = subprocess.run([str(stack.BIN / "temporal"), "operator", "search-attribute",
                                  "list", "--address", s.temporal_address],
                                 capture_output=True, text=True, check=True).stdout
            assert all(f"Vmflow{n}" in out for n in ("Resource", "Project", "Operation", "Host"))
            stack.stop_component(s, "temporal")
            assert stack.pid_of(s, "temporal") is None
    finally:
        stack.kill_component(s, "temporal", signal.SIGKILL)


# ---- the storage side's files (a real ganesha reads them in tests/storage) --------------


def test_ganesha_main_config_includes_exactly_the_export_files(settings: Settings) -> None:
    exports = gc.exports_dir(settings)
    exports.mkdir(parents=True)
    for name in ("b.conf", "a.conf", "c.conf.tmp", "d.conf.removing"):
        (exports / name).write_text("EXPORT { Export_Id = 100; }\n")
    text = gc.write_main_config(settings).read_text()
    assert [line for line in text.splitlines() if line.startswith("%include")] == [
        f'%include "{exports}/a.conf"', f'%include "{exports}/b.conf"']
    assert "Access_Type = None;" in text and "Graceless = true;" in text
    assert "Bind_addr" not in text.replace("# no Bind_addr", "")  # every address

    bad = settings.model_copy(update={"home": settings.home / 'x"; EXPORT { Path = /'})
    with pytest.raises(ValueError):
        gc.write_main_config(bad)
    assert not bad.home.exists()  # refused before anything was made there


def test_ganesha_bus_config(settings: Settings) -> None:
    text = gc.write_dbus_config(settings).read_text()
    assert f"<listen>unix:path={settings.home}/storage/unit/ganesha/dbus.sock</listen>" in text
    assert '<allow own="org.ganesha.nfsd"/>' in text
    deep = settings.model_copy(update={"home": settings.home / ("d" * 90)})
    with pytest.raises(ValueError, match="too long"):
        gc.write_dbus_config(deep)


def test_free_ports_are_below_the_ephemeral_range() -> None:
    """A port from the ephemeral range can be taken by anyone's connection before a
    child binds it (seen in CI); free_port stays below that range and is bindable."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(10000 <= p < low for p in ports)
    for p in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", p))


def test_summary_names_the_database_without_its_password(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    stack._summary(settings, [])
    assert f"Database:        sqlite:///{settings.home}/vmflow.db" in capsys.readouterr().out
    pg = settings.model_copy(
        update={"database_url": "postgresql+psycopg://vmflow:s3cret@127.0.0.1:5432/vmflow"})
    stack._summary(pg, [])
    out = capsys.readouterr().out
    assert "Database:        postgresql+psycopg://vmflow:***@127.0.0.1:5432/vmflow" in out
    assert "s3cret" not in out


def test_free_port_never_hands_out_a_port_another_process_holds(tmp_path: Path) -> None:
    """Tiers run side by side each pick ports; one picked by another live process
    (its lock under PORT_LOCKS held) is never picked here, nor twice by this one."""
    code = ("import sys, vmflow.processes as p; ports = [p.free_port() for _ in range(300)];"
            "print(' '.join(map(str, ports))); sys.stdout.flush(); sys.stdin.read()")
    other = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None
        theirs = {int(p) for p in other.stdout.readline().split()}
        assert len(theirs) == 300
        ours = [free_port() for _ in range(300)]
        assert len(set(ours)) == 300 and not theirs & set(ours)
    finally:
        other.communicate("")

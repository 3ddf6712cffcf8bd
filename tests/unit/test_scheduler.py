from activities.control.scheduler import (
    HostState,
    Ratios,
    Request,
    capacity_rejection,
    no_valid_host_message,
    select,
    traits_from_extra_specs,
)

R = Ratios(cpu=4.0, ram=1.0, disk=1.0, reserved_ram_mb=512)


def host(name: str, **kw: object) -> HostState:
    base: dict = dict(vcpus=2, ram_mb=4096, disk_gb=100, traits=[], alive=True)
    base.update(kw)
    return HostState(name, **base)


def test_most_free_ram_first() -> None:
    fit, reasons = select([host("a", used_ram_mb=2000), host("b")], Request(1, 256, 1), R)
    assert fit == ["b", "a"] and reasons == {}


def test_capacity_with_overcommit_and_reserve() -> None:
    # 2 cores x 4.0 = 8 vCPUs; 4096 - 512 reserved = 3584 MiB
    assert select([host("a", used_vcpus=7)], Request(1, 256, 1), R)[0] == ["a"]
    assert select([host("a", used_vcpus=8)], Request(1, 256, 1), R)[1] == {
        "a": "only 0 free vCPUs"}
    assert select([host("a")], Request(1, 3585, 1), R)[1] == {"a": "only 3584 MiB free RAM"}
    assert select([host("a", used_disk_gb=100)], Request(1, 1, 1), R)[1] == {
        "a": "only 0 GB free disk"}


def test_traits_required_and_forbidden() -> None:
    req, forb = traits_from_extra_specs(
        {"trait:HW_GPU": "required", "trait:SLOW": "forbidden", "hw:cpu_policy": "x"})
    assert (req, forb) == (["HW_GPU"], ["SLOW"])
    hosts = [host("plain"), host("gpu", traits=["HW_GPU"]),
             host("slowgpu", traits=["HW_GPU", "SLOW"])]
    fit, reasons = select(hosts, Request(1, 256, 1, req, forb), R)
    assert fit == ["gpu"]
    assert reasons == {"plain": "lacks trait HW_GPU", "slowgpu": "has forbidden trait SLOW"}


def test_dead_and_excluded_hosts_are_skipped() -> None:
    hosts = [host("dead", alive=False), host("slow")]
    fit, reasons = select(hosts, Request(1, 1, 1, exclude=["slow"]), R)
    assert fit == []
    assert reasons == {"dead": "down (no heartbeat from its worker)",
                       "slow": "did not pick up work in time"}


def test_no_valid_host_message_is_readable() -> None:
    assert "no hypervisor host is registered" in no_valid_host_message({})
    msg = no_valid_host_message({"h1": "lacks trait X"})
    assert msg.startswith("No valid host was found") and "h1: lacks trait X" in msg


def test_disabled_forced_down_and_down_hosts_are_skipped_with_their_reason() -> None:
    hosts = [host("maint", status="disabled", disabled_reason="new DIMMs"),
             host("quiet", status="disabled"),
             host("fenced", forced_down=True),
             host("gone", alive=False),
             host("ok")]
    fit, reasons = select(hosts, Request(1, 256, 1), R)
    assert fit == ["ok"]
    assert reasons == {"maint": "disabled: new DIMMs", "quiet": "disabled",
                       "fenced": "forced down", "gone": "down (no heartbeat from its worker)"}
    msg = no_valid_host_message(reasons)
    assert "maint: disabled: new DIMMs" in msg and "fenced: forced down" in msg


def test_state_is_judged_before_traits_and_room() -> None:
    """A disabled host says so, not that it lacks a trait or room: that is what to fix."""
    full = host("full", status="disabled", disabled_reason="drain", used_ram_mb=4000)
    assert select([full], Request(1, 256, 1, ["HW_GPU"]), R)[1] == {"full": "disabled: drain"}
    # forced_down wins over a fresh heartbeat (Nova's forced_down overrides liveness)
    assert select([host("f", forced_down=True, alive=True)], Request(1, 1, 1), R)[1] == {
        "f": "forced down"}


def test_a_claim_checks_room_only() -> None:
    """The claim on a chosen host re-checks room, not state: a host disabled after it
    was picked still takes the guest, as in Nova."""
    assert capacity_rejection(host("d", status="disabled", alive=False), Request(1, 256, 1),
                              R) is None
    assert capacity_rejection(host("d"), Request(1, 3585, 1), R) == "only 3584 MiB free RAM"

from __future__ import annotations

from activities.control.scheduler import (
    DOWN,
    HostState,
    Ratios,
    Request,
    attempts_used,
    capacity_rejection,
    choose,
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


class Asker:
    """Liveness by a fixed set of up hosts, recording each question (scheduler.choose
    is pure: what it asks and in which order is its behaviour)."""

    def __init__(self, up: set[str]):
        self.up = up
        self.asked: list[list[str]] = []

    async def __call__(self, names: list[str]) -> list[bool]:
        self.asked.append(list(names))
        return [n in self.up for n in names]


def ranked(n: int, **kw: object) -> list[HostState]:
    """h00 has the most free RAM, then h01, ..."""
    return [host(f"h{i:02}", ram_mb=100_000 - i * 100, **kw) for i in range(n)]


async def test_choose_asks_only_the_best_when_it_is_up() -> None:
    ask = Asker({f"h{i:02}" for i in range(50)})
    assert await choose(ranked(50), Request(1, 256, 1), R, ask) == (["h00"], {})
    assert ask.asked == [["h00"]]


async def test_choose_skips_dead_candidates_in_growing_batches_naming_them() -> None:
    ask = Asker({"h04", "h05"})
    fit, reasons = await choose(ranked(50), Request(1, 256, 1), R, ask)
    assert ask.asked == [["h00"], ["h01", "h02"], ["h03", "h04", "h05", "h06"]]
    assert fit == ["h04", "h05"]
    assert reasons == {n: DOWN for n in ("h00", "h01", "h02", "h03", "h06")}


async def test_choose_with_none_up_names_the_asked_down_and_the_rest_by_the_database() -> None:
    hosts = [*ranked(3), host("maint", status="disabled", disabled_reason="drain"),
             host("full", used_ram_mb=4000), host("tried"), host("gpu", traits=["GPU"])]
    req = Request(1, 256, 1, forbidden_traits=["GPU"], tried={"tried": "did not take it"})
    ask = Asker(set())
    fit, reasons = await choose(hosts, req, R, ask)
    assert fit == []
    assert ask.asked == [["h00"], ["h01", "h02"]]  # the candidates only, best first
    assert reasons == {"h00": DOWN, "h01": DOWN, "h02": DOWN, "maint": "disabled: drain",
                       "full": "only -416 MiB free RAM", "tried": "did not take it",
                       "gpu": "has forbidden trait GPU"}


async def test_choose_does_not_ask_again_about_hosts_already_found_down() -> None:
    ask = Asker({"h00", "h02"})
    fit, reasons = await choose(ranked(3), Request(1, 256, 1), R, ask, frozenset({"h00"}))
    assert ask.asked == [["h01"], ["h02"]]
    assert fit == ["h02"] and reasons == {"h00": DOWN, "h01": DOWN}


async def test_choose_with_attempts_used_up_asks_nobody() -> None:
    req = Request(1, 256, 1, tried={"h00": "did not take it"}, attempts=1)
    ask = Asker({"h01", "h02"})
    fit, reasons = await choose(ranked(3), req, R, ask)
    assert fit == [] and ask.asked == []
    assert reasons == {"h00": "did not take it", "h01": attempts_used(1),
                       "h02": attempts_used(1)}

"""`vmflow host set|list|show`: the body sent and what is shown."""

from __future__ import annotations

import json

import httpx
import pytest

from vmflow import cli

HOST = {"name": "hv1", "hostname": "vm", "vcpus": 2, "ram_mb": 5466, "disk_gb": 251,
        "traits": [], "virt_type": "qemu", "libvirt_uri": "qemu:///system", "alive": False,
        "state": "down", "last_seen": None, "status": "disabled",
        "disabled_reason": "new DIMMs", "forced_down": True, "instances": 0,
        "used": {"vcpus": 0, "ram_mb": 0, "disk_gb": 0}, "updated_at": None}


@pytest.mark.parametrize("args,body", [
    (["--disable", "--reason", "new DIMMs"], {"status": "disabled",
                                              "disabled_reason": "new DIMMs"}),
    (["--enable"], {"status": "enabled"}),
    (["--force-down"], {"forced_down": True}),
    (["--no-force-down", "--disable"], {"status": "disabled", "forced_down": False}),
])
def test_host_set_sends_novas_body(api, args: list[str], body: dict[str, object],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(lambda r: httpx.Response(200, json=HOST))
    assert cli.run(["host", "set", "hv1", *args]) == 0
    assert (seen[0].method, seen[0].url.path) == ("PUT", "/v1/hosts/hv1")
    assert json.loads(seen[0].content) == body
    assert "new DIMMs" in capsys.readouterr().out


@pytest.mark.parametrize("args", [[], ["--reason", "x"], ["--enable", "--reason", "x"]])
def test_host_set_refuses_what_the_api_would(api, args: list[str]) -> None:
    seen = api(lambda r: httpx.Response(200, json=HOST))
    assert cli.run(["host", "set", "hv1", *args]) != 0
    assert seen == []


def test_host_list_shows_state_and_status(api, capsys: pytest.CaptureFixture[str]) -> None:
    api(lambda r: httpx.Response(200, json={"hosts": [HOST]}))
    assert cli.run(["host", "list"]) == 0
    out = capsys.readouterr().out
    assert "down (forced)" in out and "disabled: new DIMMs" in out

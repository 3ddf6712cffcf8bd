"""vmflow.nic_requests: a server's `networks` value read as NICs (Nova 2.37+)."""

from __future__ import annotations

from typing import Any

import pytest

from vmflow.ipam import IpamError
from vmflow.nic_requests import NicPlan, NicRequest, choose_auto, parse_networks


def test_none_auto_and_lists() -> None:
    assert parse_networks("none") == NicPlan("none") == parse_networks([])
    assert parse_networks("auto") == NicPlan("auto")
    assert parse_networks([{"uuid": "n1"}, {"port": "p1"}, {"uuid": "n2",
                                                            "fixed_ip": "10.0.0.5"}]) == \
        NicPlan("list", (NicRequest(network_id="n1"), NicRequest(port_id="p1"),
                         NicRequest(network_id="n2", fixed_ip="10.0.0.5")))


@pytest.mark.parametrize("value", [
    "some", None, 5, {"uuid": "n"}, [{}], [{"uuid": "n", "port": "p"}], [{"net": "n"}],
    [{"port": "p", "fixed_ip": "10.0.0.5"}], [{"uuid": "n", "fixed_ip": "nope"}],
    [{"uuid": ""}], [{"uuid": 7}], [{"port": "p"}, {"port": "p"}], [{"uuid": "n"}] * 9,
])
def test_anything_else_is_refused(value: Any) -> None:
    with pytest.raises(IpamError) as e:
        parse_networks(value)
    assert not e.value.conflict


def test_auto_picks_the_one_network_or_none_and_refuses_several() -> None:
    assert choose_auto(["n1"]) == "n1"
    assert choose_auto([]) is None
    with pytest.raises(IpamError) as e:
        choose_auto(["n1", "n2"])
    assert (e.value.type, e.value.conflict) == ("NetworkAmbiguous", True)

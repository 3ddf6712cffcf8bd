"""Nova's os-keypairs through the compute facade: status codes and views per
microversion against Tempest's schemas, server-side generation, user_id for admins."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import ED25519_FP, ED25519_PUB, World
from tests.api.openstack.nova_support import C, check, fault, nova

K = f"{C}/os-keypairs"


@pytest.mark.parametrize(("version", "module"), [("2.1", "v2_1.keypairs"),
                                                 ("2.2", "v2_2.keypairs"),
                                                 ("2.10", "v2_2.keypairs"),
                                                 ("2.79", "v2_2.keypairs")])
async def test_generate_show_list_delete(api: httpx.AsyncClient, world: World, version: str,
                                         module: str) -> None:
    h = nova(world.carol, version)
    name = f"gen-{version}"
    r = await api.post(K, headers=h, json={"keypair": {"name": name}})
    made = check(r, module, "create_keypair")["keypair"]
    assert made["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert r.headers["cache-control"] == "no-store"
    assert ("type" in made) == (version != "2.1")
    shown = check(await api.get(f"{K}/{name}", headers=h), module, "get_keypair")["keypair"]
    assert (shown["fingerprint"], shown["user_id"]) == (made["fingerprint"], world.carol.user_id)
    listed = check(await api.get(K, headers=h), module, "list_keypairs")["keypairs"]
    assert name in {k["keypair"]["name"] for k in listed}
    check(await api.delete(f"{K}/{name}", headers=h), module, "delete_keypair")
    fault(await api.get(f"{K}/{name}", headers=h), 404)


async def test_import_and_refusals(api: httpx.AsyncClient, world: World) -> None:
    """OSC 10 sends the public key it generated (at 2.10): 201; then the refusals."""
    h = nova(world.carol, "2.10")
    r = await api.post(K, headers=h, json={"keypair": {"name": "imp", "public_key": ED25519_PUB}})
    made = check(r, "v2_2.keypairs", "create_keypair")["keypair"]
    assert made["fingerprint"] == ED25519_FP and "private_key" not in made
    fault(await api.post(K, headers=h, json={"keypair": {"name": "imp"}}), 409)
    for bad in ({"name": "bad", "public_key": "ssh-rsa notbase64!"}, {"name": ""},
                {"name": "x509", "type": "x509"}, {"name": "bad/name"}, {}):
        fault(await api.post(K, headers=h, json={"keypair": bad}), 400)
    fault(await api.get(f"{K}/bad", headers=h), 404)
    fault(await api.post(K, headers=nova(world.rita, "2.10"),
                         json={"keypair": {"name": "r"}}), 403)
    # keypairs are the user's: another member of the same project does not see it
    fault(await api.get(f"{K}/imp", headers=nova(world.alice, "2.10")), 404)
    fault(await api.delete(f"{K}/imp", headers=nova(world.bob, "2.10")), 404)


async def test_admin_names_a_user_from_2_10(api: httpx.AsyncClient, world: World) -> None:
    admin = nova(world.admin, "2.10")
    body = {"keypair": {"name": "for-carol", "public_key": ED25519_PUB,
                        "user_id": world.carol.user_id}}
    made = check(await api.post(K, headers=admin, json=body), "v2_2.keypairs",
                 "create_keypair")["keypair"]
    assert made["user_id"] == world.carol.user_id
    check(await api.get(f"{K}/for-carol", headers=nova(world.carol, "2.10")), "v2_2.keypairs",
          "get_keypair")
    q = f"?user_id={world.carol.user_id}"
    listed = (await api.get(f"{K}{q}", headers=admin)).json()["keypairs"]
    assert "for-carol" in {k["keypair"]["name"] for k in listed}
    # a member may not name another user; below 2.10 nobody may
    fault(await api.get(f"{K}{q}", headers=nova(world.alice, "2.10")), 403)
    fault(await api.post(K, headers=nova(world.admin, "2.9"), json=body), 400)
    check(await api.delete(f"{K}/for-carol{q}", headers=admin), "v2_2.keypairs",
          "delete_keypair")
    fault(await api.get(f"{K}/for-carol", headers=nova(world.carol, "2.10")), 404)

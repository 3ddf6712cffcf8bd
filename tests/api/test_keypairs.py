"""Keypairs: generate (private key once), import with strict validation, fingerprints
that agree with ssh-keygen, per-user scoping, and key_name on server create."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.services.keypairs import InvalidKey, parse_public_key
from tests.api.conftest import ED25519_FP, ED25519_PUB, World, counts
from tests.api.test_auth import assert_error

BLOB = ED25519_PUB.split()[1]


def keygen_fingerprint(pub: str, tmp_path: Path) -> str:
    f = tmp_path / "key.pub"
    f.write_text(pub + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(f)], capture_output=True, text=True,
                         check=True).stdout
    return out.split()[1]


def keygen(tmp_path: Path, *args: str) -> str:
    path = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-N", "", "-q", "-f", str(path), "-C", "c", *args],
                   check=True)
    pub = path.with_suffix(".pub").read_text().strip()
    path.unlink()
    path.with_suffix(".pub").unlink()
    return pub


def wire(*fields: bytes) -> str:
    return base64.b64encode(b"".join(len(f).to_bytes(4, "big") + f for f in fields)).decode()


async def keypairs_of(api: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    r = await api.get("/v1/keypairs", headers=headers)
    assert r.status_code == 200, r.text
    return [k["name"] for k in r.json()["keypairs"]]


async def test_generate_returns_the_private_key_once(api: httpx.AsyncClient, world: World,
                                                     tmp_path: Path) -> None:
    r = await api.post("/v1/keypairs", headers=world.alice.h, json={"name": "gen key.1"})
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    kp = r.json()["keypair"]
    assert (kp["name"], kp["type"], kp["user_id"]) == ("gen key.1", "ssh", world.alice.user_id)
    assert kp["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert kp["public_key"].startswith("ssh-ed25519 ") and kp["public_key"].endswith(
        " gen key.1")
    assert keygen_fingerprint(kp["public_key"], tmp_path) == kp["fingerprint"]
    # the private key belongs to the public key
    priv = tmp_path / "priv"
    priv.write_text(kp["private_key"])
    priv.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(priv)], capture_output=True,
                             text=True, check=True).stdout.split()[:2]
    assert derived == kp["public_key"].split()[:2]

    shown = (await api.get("/v1/keypairs/gen key.1", headers=world.alice.h)).json()["keypair"]
    assert "private_key" not in shown
    assert shown == {k: v for k, v in kp.items() if k != "private_key"}
    listed = (await api.get("/v1/keypairs", headers=world.alice.h)).json()["keypairs"]
    assert shown in listed and all("private_key" not in k for k in listed)


async def test_import_and_fingerprints_agree_with_ssh_keygen(
        api: httpx.AsyncClient, world: World, tmp_path: Path) -> None:
    r = await api.post("/v1/keypairs", headers=world.alice.h,
                       json={"name": "imported", "public_key": ED25519_PUB + "\n"})
    assert r.status_code == 201, r.text
    kp = r.json()["keypair"]
    assert "private_key" not in kp and "cache-control" not in r.headers
    assert (kp["public_key"], kp["fingerprint"]) == (ED25519_PUB, ED25519_FP)
    for name, args in (("rsa", ("-t", "rsa", "-b", "2048")),
                       ("ecdsa", ("-t", "ecdsa", "-b", "384")),
                       ("ed", ("-t", "ed25519"))):
        pub = keygen(tmp_path, *args)
        r = await api.post("/v1/keypairs", headers=world.alice.h,
                           json={"name": f"imported-{name}", "public_key": pub})
        assert r.status_code == 201, r.text
        assert r.json()["keypair"]["fingerprint"] == keygen_fingerprint(pub, tmp_path)


ED_KEY = b"\x01" * 32
E65537 = (65537).to_bytes(3, "big")
RSA_512 = "ssh-rsa " + wire(b"ssh-rsa", E65537, (1 << 511).to_bytes(64, "big"))
RSA_601 = "ssh-rsa " + wire(b"ssh-rsa", E65537, (1 << 600).to_bytes(76, "big"))
EC_WRONG_CURVE = ("ecdsa-sha2-nistp256 "
                  + wire(b"ecdsa-sha2-nistp256", b"nistp384", b"\x04" + ED_KEY))


@pytest.mark.parametrize("key", [
    "",
    "ssh-ed25519",
    f"ssh-ed25519 {BLOB}\nssh-ed25519 {BLOB}",
    f"ssh-ed25519 {BLOB[:-4]}",  # truncated
    "ssh-ed25519 !!!notbase64!!!",
    f"ssh-rsa {BLOB}",  # the blob says ed25519
    f"ssh-dss {BLOB}",
    f'command="/bin/sh" ssh-ed25519 {BLOB}',  # authorized_keys options
    f"ssh-ed25519 {wire(b'ssh-ed25519', ED_KEY, b'trailing')}",
    f"ssh-ed25519 {wire(b'ssh-ed25519', b'short')}",
    RSA_512,
    EC_WRONG_CURVE,
    f"ssh-ed25519 {base64.b64encode(b'ssh-ed25519').decode()}",  # not length-prefixed
    "-----BEGIN OPENSSH PRIVATE KEY-----",
])
async def test_bad_public_keys_are_400(api: httpx.AsyncClient, world: World, key: str) -> None:
    before = await keypairs_of(api, world.alice.h)
    r = await api.post("/v1/keypairs", headers=world.alice.h,
                       json={"name": "bad", "public_key": key})
    assert_error(r, 400, "InvalidKey")
    assert await keypairs_of(api, world.alice.h) == before


def test_parse_keeps_the_comment_and_refuses_what_openssh_would() -> None:
    assert parse_public_key(f"  {ED25519_PUB}  \n") == (ED25519_PUB, ED25519_FP)
    line, _ = parse_public_key(f"ssh-ed25519 {BLOB} two words")
    assert line == f"ssh-ed25519 {BLOB} two words"
    with pytest.raises(InvalidKey, match="at least 1024 bits"):
        parse_public_key(RSA_601)


@pytest.mark.parametrize("body", [
    {"name": ""}, {"name": " lead"}, {"name": "trail "}, {"name": "bad/name"},
    {"name": "x" * 256}, {"name": "ünï"}, {"name": "semi;colon"}, {"name": 5},
    {"name": "ok", "type": "x509"}, {"name": "ok", "public_key": 1}, {"name": "ok", "x": 1},
    {},
])
async def test_bad_names_and_bodies_are_400(api: httpx.AsyncClient, world: World,
                                            body: Any) -> None:
    before = await keypairs_of(api, world.alice.h)
    assert_error(await api.post("/v1/keypairs", headers=world.alice.h, json=body), 400,
                 "ValidationError")
    assert await keypairs_of(api, world.alice.h) == before


async def test_keypairs_belong_to_their_user(api: httpx.AsyncClient, world: World) -> None:
    r = await api.post("/v1/keypairs", headers=world.carol.h,
                       json={"name": "carols", "public_key": ED25519_PUB})
    assert r.status_code == 201, r.text
    assert_error(await api.post("/v1/keypairs", headers=world.carol.h,
                                json={"name": "carols"}), 409, "KeypairExists")
    # same project, another user: not visible, and the name is free for them
    for who in (world.alice, world.bob, world.admin):
        assert_error(await api.get("/v1/keypairs/carols", headers=who.h), 404, "NotFound")
        assert_error(await api.delete("/v1/keypairs/carols", headers=who.h), 404)
        assert "carols" not in await keypairs_of(api, who.h)
    r = await api.post("/v1/keypairs", headers=world.bob.h,
                       json={"name": "carols", "public_key": ED25519_PUB})
    assert r.status_code == 201, r.text
    assert "carols" in await keypairs_of(api, world.carol.h)

    # a reader reads its own, writes nothing
    assert await keypairs_of(api, world.rita.h) == []
    assert_error(await api.post("/v1/keypairs", headers=world.rita.h, json={"name": "r"}),
                 403, "Forbidden")
    assert_error(await api.delete("/v1/keypairs/carols", headers=world.rita.h), 403)

    assert (await api.delete("/v1/keypairs/carols", headers=world.carol.h)).status_code == 204
    assert_error(await api.get("/v1/keypairs/carols", headers=world.carol.h), 404)
    assert "carols" in await keypairs_of(api, world.bob.h)


async def test_idempotent_generate(api: httpx.AsyncClient, world: World) -> None:
    h = {**world.carol.h, "Idempotency-Key": "gen-once"}
    first = await api.post("/v1/keypairs", headers=h, json={"name": "once"})
    again = await api.post("/v1/keypairs", headers=h, json={"name": "once"})
    assert (first.status_code, again.status_code) == (201, 201)
    kp = first.json()["keypair"]
    assert again.json()["keypair"] == {k: v for k, v in kp.items() if k != "private_key"}


async def test_create_server_needs_an_existing_keypair(api: httpx.AsyncClient,
                                                       world: World) -> None:
    ok = {"name": "keyed", "image": "cirros", "flavor": "m1.tiny"}
    r = await api.post("/v1/keypairs", headers=world.bob.h,
                       json={"name": "bobs-only", "public_key": ED25519_PUB})
    assert r.status_code == 201, r.text
    before = counts()
    for name in ("no-such-key", "bobs-only"):  # bob's key is not alice's
        r = await api.post("/v1/servers", headers=world.alice.h, json={**ok, "key_name": name})
        err = assert_error(r, 400, "KeypairNotFound")
        assert name in err["message"]
    assert counts() == before
    r = await api.post("/v1/servers", headers=world.bob.h, json={**ok, "key_name": "bobs-only"})
    assert r.status_code == 202, r.text
    assert r.json()["server"]["key_name"] == "bobs-only"

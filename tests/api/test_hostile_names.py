"""Hostile names and metadata at the API: every user-named field either refuses a string
with a 400 that changes nothing, or stores it and shows it back exactly as sent (the
rules: docs/decisions.md, "Hostile names and metadata"). Markup, shell and path
characters are plain text; control characters, unpaired surrogates, surrounding
whitespace on names and strings over 255 characters are refused."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from api.schemas.common import Name
from tests.api.conftest import ED25519_PUB, Caller, World, add_instance, make_caller, session
from tests.api.test_auth import assert_error
from tests.api.test_shares import add_share
from tests.api.test_snapshot import base_image, built_from
from vmflow.models import Image, Instance, Keypair, Operation, Share, ShareSnapshot
from vmflow.network_models import Network, Port, SecurityGroup

SHELL = "<>&'\"$();|../"
# stored and shown back byte for byte wherever a name or a value goes
KEPT = [
    SHELL,
    "a`id`$(reboot)${IFS};rm -rf /*|| true&& x>/tmp/y<z \\ %s%n {0} ]]><!-- -->",
    "../../../etc/passwd",
    "-rf --help",
    "名前 ☃ 𝄞 e\u0301 \u202eevil\u200d",
    "x" * 255,
    "𝄞" * 255,  # 255 characters, 1020 bytes
    "inner  double  spaces",
]
SURROGATE = "\ud800"
# refused in every name and key (values keep tab, CR and LF)
CONTROL = ["nul\x00", "line\nbreak", "cr\rhere", "tab\there", "\x1b[31mred", "del\x7f",
           "nel\x85", SURROGATE]
REFUSED_NAMES = [*CONTROL, " lead", "trail ", "\u3000ideographic", "x" * 256, "𝄞" * 256, ""]
VALUE_KEPT = [*KEPT, "two\nlines\r\nand\ttab", ""]
VALUE_REFUSED = ["nul\x00", "\x1b[31mred", "del\x7f", "nel\x85", SURROGATE, "x" * 256]
TABLES = (Instance, Operation, Image, Keypair, Share, ShareSnapshot, Network, Port,
          SecurityGroup)


def row_counts() -> dict[str, int]:
    with session() as s:
        return {t.__name__: s.exec(select(func.count()).select_from(t)).one() for t in TABLES}


def body_bytes(body: Any) -> bytes:
    """JSON as a client would send it; a lone surrogate goes as its escape (\\ud800),
    which json.loads accepts and UTF-8 cannot encode."""
    return json.dumps(body, ensure_ascii=True).encode()


async def send(api: httpx.AsyncClient, method: str, url: str, who: Caller,
               body: Any) -> httpx.Response:
    return await api.request(method, url, content=body_bytes(body),
                             headers={**who.h, "Content-Type": "application/json"})


async def refused(api: httpx.AsyncClient, method: str, url: str, who: Caller, body: Any,
                  also: Any = None) -> None:
    """400, nothing changed (rows, and `also()` if given: the resource as shown)."""
    before, shown = row_counts(), (await also() if also else None)
    r = await send(api, method, url, who, body)
    assert_error(r, 400)
    assert row_counts() == before
    if also:
        assert await also() == shown


@pytest.fixture(scope="module")
async def eve(api: httpx.AsyncClient, world: World) -> Caller:
    """A member of a project of its own, so these rows disturb no other test's counts."""
    r = await api.post("/v1/projects", headers=world.admin.h, json={"name": "hostile"})
    assert r.status_code == 201, r.text
    return await make_caller(api, world.admin.h, "eve", "hostile", "member")


def test_the_name_type_refuses_what_it_should() -> None:
    from pydantic import TypeAdapter, ValidationError
    names = TypeAdapter(Name)
    for v in KEPT:
        assert names.validate_python(v) == v
    for v in REFUSED_NAMES:
        with pytest.raises(ValidationError):
            names.validate_python(v)


# --- servers: name, metadata on create, metadata routes ------------------------------

@pytest.mark.parametrize("name", KEPT)
async def test_server_names_are_kept(api: httpx.AsyncClient, world: World, eve: Caller,
                                     name: str) -> None:
    r = await send(api, "POST", "/v1/servers", eve, {
        "name": name, "image": "cirros", "flavor": "m1.tiny", "metadata": {name[:255]: name}})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    shown = (await api.get(f"/v1/servers/{sid}", headers=eve.h)).json()
    assert (shown["name"], shown["metadata"]) == (name, {name: name})
    listed = (await api.get("/v1/servers", headers=eve.h)).json()["servers"]
    assert [s["name"] for s in listed if s["id"] == sid] == [name]


@pytest.mark.parametrize("name", REFUSED_NAMES)
async def test_bad_server_names_are_refused(api: httpx.AsyncClient, eve: Caller,
                                            name: str) -> None:
    await refused(api, "POST", "/v1/servers", eve,
                  {"name": name, "image": "cirros", "flavor": "m1.tiny"})


@pytest.mark.parametrize("key", [k for k in REFUSED_NAMES if k.strip() == k and k])
async def test_bad_metadata_keys_are_refused(api: httpx.AsyncClient, eve: Caller,
                                             key: str) -> None:
    await refused(api, "POST", "/v1/servers", eve,
                  {"name": "k", "image": "cirros", "flavor": "m1.tiny", "metadata": {key: "v"}})


@pytest.mark.parametrize("value", VALUE_REFUSED)
async def test_bad_metadata_values_are_refused(api: httpx.AsyncClient, eve: Caller,
                                               value: str) -> None:
    await refused(api, "POST", "/v1/servers", eve,
                  {"name": "v", "image": "cirros", "flavor": "m1.tiny",
                   "metadata": {"k": value}})


async def test_metadata_routes_keep_or_refuse(api: httpx.AsyncClient, world: World,
                                              eve: Caller) -> None:
    inst = add_instance(world, owner=eve, name="meta-target")
    url = f"/v1/servers/{inst.id}/metadata"

    async def shown() -> Any:
        return (await api.get(url, headers=eve.h)).json()

    meta = {k: k for k in KEPT} | {"lines": VALUE_KEPT[-2], "empty": ""}
    r = await send(api, "PUT", url, eve, {"metadata": meta})
    assert (r.status_code, r.json()) == (200, {"metadata": meta}), r.text
    assert await shown() == {"metadata": meta}
    # one item by URL: the key percent-encoded, '/' and '..' included
    for key in (SHELL, "a/../b", "%2e%2e", "名前 ☃"):
        item = f"{url}/{quote(key, safe='')}"
        r = await send(api, "PUT", item, eve, {"meta": {key: SHELL + "\n"}})
        assert (r.status_code, r.json()) == (200, {"meta": {key: SHELL + "\n"}}), (key, r.text)
        r = await api.get(item, headers=eve.h)
        assert (r.status_code, r.json()) == (200, {"meta": {key: SHELL + "\n"}}), key
        meta[key] = SHELL + "\n"
    assert await shown() == {"metadata": meta}
    for key in [k for k in REFUSED_NAMES if k.strip() == k and k]:
        await refused(api, "POST", url, eve, {"metadata": {key: "v"}}, also=shown)
    for value in VALUE_REFUSED:
        await refused(api, "POST", url, eve, {"metadata": {"k": value}}, also=shown)
        await refused(api, "PUT", f"{url}/k", eve, {"meta": {"k": value}}, also=shown)


# --- snapshots of servers (createImage) -> image names and properties ------------------

async def test_snapshot_names_and_metadata(api: httpx.AsyncClient, world: World,
                                           eve: Caller) -> None:
    inst = built_from(add_instance(world, owner=eve, vm_state="active", name="snapme"),
                      base_image())
    url = f"/v1/servers/{inst.id}/action"
    for name in [*REFUSED_NAMES]:
        await refused(api, "POST", url, eve, {"createImage": {"name": name}})
    await refused(api, "POST", url, eve, {"createImage": {"name": "s", "metadata": {"k": "\x00"}}})
    r = await send(api, "POST", url, eve, {"createImage": {"name": SHELL,
                                                           "metadata": {SHELL: KEPT[1]}}})
    assert r.status_code == 202, r.text
    image = (await api.get(f"/v1/images/{r.json()['image_id']}", headers=eve.h)).json()
    assert (image["name"], image["properties"][SHELL]) == (SHELL, KEPT[1])


# --- images -------------------------------------------------------------------------

async def test_image_names_and_properties(api: httpx.AsyncClient, eve: Caller) -> None:
    base = {"disk_format": "qcow2", "container_format": "bare"}
    ids = []
    for name in KEPT:
        r = await send(api, "POST", "/v1/images", eve,
                       {**base, "name": name, "properties": {name[:255]: name, "t": SHELL}})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        shown = (await api.get(f"/v1/images/{ids[-1]}", headers=eve.h)).json()
        assert (shown["name"], shown["properties"][name[:255]], shown["properties"]["t"]) == (
            name, name, SHELL)
    for name in REFUSED_NAMES:
        await refused(api, "POST", "/v1/images", eve, {**base, "name": name})
    for bad in [k for k in REFUSED_NAMES if k.strip() == k and k]:
        await refused(api, "POST", "/v1/images", eve, {**base, "name": "i", "properties": {
            bad: "v"}})
    for bad in VALUE_REFUSED:
        await refused(api, "POST", "/v1/images", eve, {**base, "name": "i", "properties": {
            "k": bad}})

    url = f"/v1/images/{ids[0]}"

    async def shown() -> Any:
        return (await api.get(url, headers=eve.h)).json()

    for name in REFUSED_NAMES:
        await refused(api, "PATCH", url, eve, {"name": name}, also=shown)
    await refused(api, "PATCH", url, eve, {"properties": {"k": "\x00"}}, also=shown)
    r = await send(api, "PATCH", url, eve, {"name": KEPT[4], "properties": {"u": KEPT[1]}})
    assert r.status_code == 200, r.text
    assert ((await shown())["name"], (await shown())["properties"]["u"]) == (KEPT[4], KEPT[1])


# --- keypairs: Nova's name charset; the public key's comment is kept -----------------

async def test_keypair_names_and_key_comments(api: httpx.AsyncClient, eve: Caller) -> None:
    for name in [SHELL, "a/b", "..", ".", "名前", "a;b", *REFUSED_NAMES]:
        await refused(api, "POST", "/v1/keypairs", eve, {"name": name})
        await refused(api, "POST", "/v1/keypairs", eve, {"name": name, "public_key": ED25519_PUB})
    key_type, blob = ED25519_PUB.split()[:2]
    for i, comment in enumerate([SHELL, KEPT[1], KEPT[4], "user@host " + SHELL]):
        line = f"{key_type} {blob} {comment}"
        r = await send(api, "POST", "/v1/keypairs", eve, {"name": f"k{i}", "public_key": line})
        assert r.status_code == 201, r.text
        shown = (await api.get(f"/v1/keypairs/k{i}", headers=eve.h)).json()["keypair"]
        assert shown["public_key"] == line
    # a comment with a control character: refused (a .pub line is printable text)
    for comment in VALUE_REFUSED[:-1]:
        await refused(api, "POST", "/v1/keypairs", eve,
                      {"name": "kc", "public_key": f"{key_type} {blob} x{comment}"})
    for comment in CONTROL[1:3]:  # a line break makes it two lines
        await refused(api, "POST", "/v1/keypairs", eve,
                      {"name": "kc", "public_key": f"{key_type} {blob} x{comment}y"})


# --- shares and their snapshots (Manila) --------------------------------------------

async def test_share_and_snapshot_names(api: httpx.AsyncClient, eve: Caller) -> None:
    for name in KEPT[:5]:
        r = await send(api, "POST", "/v1/shares", eve,
                       {"share_proto": "NFS", "size": 1, "name": name})
        assert r.status_code == 202, r.text
        sid = r.json()["share"]["id"]
        assert (await api.get(f"/v1/shares/{sid}", headers=eve.h)).json()["name"] == name
    for name in REFUSED_NAMES:
        await refused(api, "POST", "/v1/shares", eve,
                      {"share_proto": "NFS", "size": 1, "name": name})
    share = add_share(eve, name=SHELL)
    for name in REFUSED_NAMES:
        await refused(api, "POST", "/v1/share-snapshots", eve, {"share_id": share.id, "name": name})
    r = await send(api, "POST", "/v1/share-snapshots", eve, {"share_id": share.id, "name": KEPT[1]})
    assert r.status_code == 202, r.text
    snap_id = r.json()["snapshot"]["id"]
    shown = (await api.get(f"/v1/share-snapshots/{snap_id}", headers=eve.h)).json()
    assert shown["name"] == KEPT[1]


# --- networks, ports, security groups (Neutron: may be empty; no control characters) --

async def test_network_port_and_group_names(api: httpx.AsyncClient, eve: Caller) -> None:
    for name in [SHELL, " lead", "trail ", ""]:  # Neutron keeps surrounding whitespace
        r = await send(api, "POST", "/v1/networks", eve, {"name": name})
        assert r.status_code == 201, r.text
        net = r.json()
        assert (await api.get(f"/v1/networks/{net['id']}", headers=eve.h)).json()[
            "name"] == name
    for name in [*KEPT, " lead "]:
        r = await send(api, "POST", "/v1/ports", eve, {"network_id": net["id"], "name": name})
        assert r.status_code == 201, r.text
        port = (await api.get(f"/v1/ports/{r.json()['id']}", headers=eve.h)).json()
        assert port["name"] == name
        r = await send(api, "POST", "/v1/security-groups", eve,
                       {"name": name, "description": KEPT[1]})
        assert r.status_code == 201, r.text
        group = (await api.get(f"/v1/security-groups/{r.json()['id']}", headers=eve.h)).json()
        assert (group["name"], group["description"]) == (name, KEPT[1])
    for bad in [*CONTROL, "x" * 256]:
        await refused(api, "POST", "/v1/networks", eve, {"name": bad})
        await refused(api, "POST", "/v1/ports", eve, {"network_id": net["id"], "name": bad})
        await refused(api, "POST", "/v1/security-groups", eve, {"name": bad})
        await refused(api, "POST", "/v1/security-groups", eve, {"name": "g", "description": bad})


# --- the guest's hostname: a DNS label made from the name, never the name itself ------

@pytest.mark.parametrize(("name", "expected"), [
    ("web_01.example com", "web-01-example-com"), ("a <b> . c", "a-b-c"), ("MyServer", "myserver"),
    (SHELL, ""), ("$(reboot)", "reboot"), ("名前 ☃", ""), ("-a-", "a"), ("x" * 255, "x" * 63),
])
def test_hostname_is_a_dns_label(name: str, expected: str) -> None:
    from activities.control.metadata_docs import hostname
    assert hostname(name, "0b9c") == (expected or "Server-0b9c")

"""Nova's legacy image proxy through the compute facade (up to 2.35, 404 after)."""

from __future__ import annotations

import httpx

from tests.api.conftest import World, add_image
from tests.api.openstack.nova_support import C, check, fault, nova

IMG = "v2_1.images"


async def test_list_show_and_gone_after_2_35(api: httpx.AsyncClient, world: World) -> None:
    add_image("proxy-public")
    h = nova(world.alice)
    listed = check(await api.get(f"{C}/images", headers=h), IMG, "list_images")["images"]
    assert world.image.id in {i["id"] for i in listed}
    assert world.private_p2.id not in {i["id"] for i in listed}
    detail = check(await api.get(f"{C}/images/detail", headers=h), IMG, "list_images_details")
    cirros = next(i for i in detail["images"] if i["id"] == world.image.id)
    assert (cirros["status"], cirros["progress"]) == ("ACTIVE", 100)
    shown = check(await api.get(f"{C}/images/{world.image.id}", headers=h), IMG, "get_image")
    assert shown["image"]["name"] == "cirros"
    page = check(await api.get(f"{C}/images?limit=1", headers=h), IMG, "list_images")
    assert len(page["images"]) == 1 and page["images_links"]
    fault(await api.get(f"{C}/images/{world.private_p2.id}", headers=h), 404)
    fault(await api.get(f"{C}/images/{world.image.id}", headers=nova(world.alice, "2.36")), 404)
    fault(await api.get(f"{C}/images", headers=nova(world.alice, "2.79")), 404)


async def test_metadata_and_delete(api: httpx.AsyncClient, world: World) -> None:
    image = add_image("proxy-own", visibility="private", owner=world.alice.project_id)
    h = nova(world.alice, "2.35")
    meta = f"{C}/images/{image.id}/metadata"
    r = await api.post(meta, headers=h, json={"metadata": {"a": "1", "b": "2"}})
    assert check(r, IMG, "image_metadata")["metadata"] == {"a": "1", "b": "2"}
    r = await api.put(f"{meta}/a", headers=h, json={"meta": {"a": "9"}})
    assert check(r, IMG, "image_meta_item") == {"meta": {"a": "9"}}
    fault(await api.put(f"{meta}/a", headers=h, json={"meta": {"z": "9"}}), 400)
    r = await api.put(meta, headers=h, json={"metadata": {"c": "3"}})
    assert check(r, IMG, "image_metadata")["metadata"] == {"c": "3"}
    assert check(await api.get(f"{meta}/c", headers=h), IMG, "image_meta_item") == {
        "meta": {"c": "3"}}
    assert (await api.delete(f"{meta}/c", headers=h)).status_code == 204
    fault(await api.get(f"{meta}/c", headers=h), 404)
    fault(await api.post(meta, headers=h, json={"meta": {}}), 400)
    # others: bob does not see it, rita may not change it
    fault(await api.get(meta, headers=nova(world.bob)), 404)
    fault(await api.post(meta, headers=nova(world.rita), json={"metadata": {"x": "y"}}), 403)
    fault(await api.delete(f"{C}/images/{image.id}", headers=nova(world.bob)), 404)
    check(await api.delete(f"{C}/images/{image.id}", headers=h), IMG, "delete")
    fault(await api.get(f"{C}/images/{image.id}", headers=h), 404)

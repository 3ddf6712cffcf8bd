"""`vmflow image ...`: create and upload, download, set, delete, share (Glance-style).

The upload is streamed from the file with a progress bar, never read into memory; a
download is checked against the sha256 the API sends; sharing is Glance's members."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import httpx
import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from vmflow.cli.common import (
    Api,
    ApiError,
    Column,
    JsonOpt,
    calls,
    col,
    emit,
    err,
    fmt_size,
    image_id,
    kv_table,
    list_table,
    out,
    parse_properties,
    seg,
    styled,
)

image_app = typer.Typer(no_args_is_help=True, help="Images.")

CHUNK = 1 << 20  # what is read from the file (or the response) at a time
# the API inspects the whole image before it answers an upload
UPLOAD_TIMEOUT = httpx.Timeout(30.0, read=900.0)
CHECKSUM_HEADER = "X-Image-Checksum"  # the sha256 the API sends with an image's data

ImageArg = Annotated[str, typer.Argument(metavar="IMAGE", help="Image id or unique name.")]
ProjectArg = Annotated[str, typer.Argument(metavar="PROJECT", help="Project id.")]
PropertyOpt = Annotated[list[str] | None, typer.Option(
    "--property", metavar="KEY=VALUE", help="Repeatable.")]
IMAGE_COLUMNS: list[Column] = [
    ("ID", col("id")), ("Name", col("name")), ("Status", col("status", styled)),
    ("Format", col("disk_format")), ("Size", col("size", fmt_size)),
    ("Visibility", col("visibility")),
]
MEMBER_COLUMNS: list[Column] = [("Image", col("image_id")), ("Member", col("member_id")),
                                ("Status", col("status", styled)), ("Updated", col("updated_at"))]


class DiskFormat(StrEnum):
    qcow2 = "qcow2"
    raw = "raw"
    iso = "iso"
    aki = "aki"
    ari = "ari"


class ContainerFormat(StrEnum):
    bare = "bare"
    aki = "aki"
    ari = "ari"


class Visibility(StrEnum):
    private = "private"
    shared = "shared"
    community = "community"
    public = "public"


def transfer_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=err())


def upload(api: Api, iid: str, path: Path) -> dict[str, Any]:
    """PUT the file as the image's data, a chunk at a time; the image as it is after."""
    size = path.stat().st_size
    with transfer_bar() as progress:
        task = progress.add_task(escape(f"upload {path.name}"), total=size)

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as f:
                while block := f.read(CHUNK):
                    yield block
                    progress.advance(task, len(block))

        try:
            api.call("PUT", f"/v1/images/{iid}/file", content=chunks(), timeout=UPLOAD_TIMEOUT,
                     headers={"Content-Type": "application/octet-stream",
                              "Content-Length": str(size)})
        except ApiError as e:
            if e.status is None or e.status >= 500:  # the image went back to queued
                e.message += f"; retry with: vmflow image upload {iid} --file {path}"
            raise
    return dict(api.get(f"/v1/images/{iid}"))


FileOpt = Annotated[Path, typer.Option("--file", exists=True, dir_okay=False, readable=True,
                                       help="The image data to upload.")]


@image_app.command("create")
@calls("POST /v1/images", "PUT /v1/images/{image_id}/file", "GET /v1/images/{image_id}")
def image_create(
    name: str,
    disk_format: Annotated[DiskFormat, typer.Option(help="Format of the data.")],
    file: Annotated[Path | None, typer.Option(
        "--file", exists=True, dir_okay=False, readable=True,
        help="Upload this file (without it the image stays queued for `image upload`).")
    ] = None,
    container_format: Annotated[ContainerFormat, typer.Option()] = ContainerFormat.bare,
    public: Annotated[bool, typer.Option("--public", help="Visible to every project "
                                         "(admin).")] = False,
    visibility: Annotated[Visibility | None, typer.Option(
        help="private (default), shared (with members), community or public.")] = None,
    prop: PropertyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an image and upload its data; it is active once the API has inspected it."""
    if public and visibility not in (None, Visibility.public):
        raise typer.BadParameter("--public contradicts --visibility", param_hint="--public")
    body: dict[str, Any] = {"name": name, "disk_format": disk_format.value,
                            "container_format": container_format.value,
                            "visibility": "public" if public else
                            (visibility or Visibility.private).value}
    if prop:
        body["properties"] = parse_properties(prop)
    api = Api()
    image = dict(api.call("POST", "/v1/images", json=body))
    if file is not None:
        image = upload(api, image["id"], file)
    emit(image, as_json, lambda: kv_table(image))


@image_app.command("upload")
@calls("PUT /v1/images/{image_id}/file", "GET /v1/images/{image_id}")
def image_upload(image: ImageArg, file: FileOpt, as_json: JsonOpt = False) -> None:
    """Upload the data of a queued image (after a create without --file, or again
    after an interrupted upload)."""
    api = Api()
    data = upload(api, image_id(api, image), file)
    emit(data, as_json, lambda: kv_table(data))


@image_app.command("list")
@calls("GET /v1/images")
def image_list(
    pending: Annotated[bool, typer.Option("--pending", help="Images shared with this "
                                          "project that wait for an answer.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List images (shared ones once accepted)."""
    images = Api().items("/v1/images" + ("?member_status=pending" if pending else ""),
                         "images")
    emit(images, as_json, lambda: list_table(images, IMAGE_COLUMNS))


@image_app.command("show")
@calls("GET /v1/images/{image_id}")
def image_show(image: ImageArg, as_json: JsonOpt = False) -> None:
    """Show one image."""
    api = Api()
    data = api.get(f"/v1/images/{image_id(api, image)}")
    emit(data, as_json, lambda: kv_table(data))


@image_app.command("set")
@calls("PATCH /v1/images/{image_id}")
def image_set(
    image: ImageArg,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    visibility: Annotated[Visibility | None, typer.Option()] = None,
    prop: PropertyOpt = None,
    unset: Annotated[list[str] | None, typer.Option(
        "--unset-property", metavar="KEY", help="Remove a property; repeatable.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rename an image, change its visibility or its properties (merged)."""
    body: dict[str, Any] = {"properties": parse_properties(prop or [])}
    if name is not None:
        body["name"] = name
    if visibility is not None:
        body["visibility"] = visibility.value
    if unset:
        body["remove_properties"] = unset
    if len(body) == 1 and not body["properties"]:
        raise typer.BadParameter("nothing to change", param_hint="--name/--visibility/--property")
    api = Api()
    data = api.call("PATCH", f"/v1/images/{image_id(api, image)}", json=body)
    emit(data, as_json, lambda: kv_table(data))


@image_app.command("delete")
@calls("DELETE /v1/images/{image_id}")
def image_delete(image: ImageArg) -> None:
    """Delete an image for everybody (servers booted from it keep running)."""
    api = Api()
    iid = image_id(api, image)
    api.call("DELETE", f"/v1/images/{iid}")
    out().print(f"deleted image {iid}")


def save(r: httpx.Response, sink: BinaryIO, what: str) -> str:
    """Copy the body into `sink` with a progress bar; its sha256."""
    h = hashlib.sha256()
    total = r.headers.get("content-length")
    with transfer_bar() as progress:
        task = progress.add_task(escape(what), total=int(total) if total else None)
        for block in r.iter_bytes(CHUNK):
            h.update(block)
            sink.write(block)
            progress.advance(task, len(block))
    return h.hexdigest()


@image_app.command("download")
@calls("GET /v1/images/{image_id}/file")
def image_download(
    image: ImageArg,
    file: Annotated[Path | None, typer.Option(
        "--file", dir_okay=False, help="Write here (default: standard output).")] = None,
) -> None:
    """Save an active image's data; its sha256 is checked against the API's."""
    if file is None and sys.stdout.isatty():
        raise typer.BadParameter("give --file, or redirect standard output", param_hint="--file")
    if file is not None and file.exists():
        raise typer.BadParameter(f"{file} exists; refusing to overwrite it", param_hint="--file")
    api = Api()
    iid = image_id(api, image)
    with api.stream("GET", f"/v1/images/{iid}/file") as r:
        expected = r.headers.get(CHECKSUM_HEADER)
        if file is None:
            digest = save(r, sys.stdout.buffer, f"download {iid}")
            sys.stdout.buffer.flush()
        else:
            try:
                with file.open("xb") as sink:
                    digest = save(r, sink, f"download {file.name}")
            except BaseException:
                file.unlink(missing_ok=True)  # no partial image left behind
                raise
    if expected and digest != expected:
        if file is not None:
            os.unlink(file)
        raise ApiError(f"checksum mismatch: got sha256 {digest}, the API says {expected}")
    err().print(f"image {iid}: sha256 {digest} verified" if expected else
                f"image {iid}: sha256 {digest} (the API sent none to compare)")


# ---- members: sharing an image with other projects ------------------------------------


@image_app.command("member-add")
@calls("POST /v1/images/{image_id}/members")
def image_member_add(image: ImageArg, project: ProjectArg, as_json: JsonOpt = False) -> None:
    """Share a `shared` image with a project; it sees the image once it accepts."""
    api = Api()
    data = api.call("POST", f"/v1/images/{image_id(api, image)}/members",
                    json={"member": project})
    emit(data, as_json, lambda: kv_table(data))


@image_app.command("member-list")
@calls("GET /v1/images/{image_id}/members")
def image_member_list(image: ImageArg, as_json: JsonOpt = False) -> None:
    """The projects an image is shared with (a member sees only itself)."""
    api = Api()
    members = api.items(f"/v1/images/{image_id(api, image)}/members", "members")
    emit(members, as_json, lambda: list_table(members, MEMBER_COLUMNS))


@image_app.command("member-show")
@calls("GET /v1/images/{image_id}/members/{member}")
def image_member_show(image: ImageArg, project: ProjectArg, as_json: JsonOpt = False) -> None:
    """One project's membership of an image."""
    api = Api()
    data = api.get(f"/v1/images/{image_id(api, image)}/members/{seg(project)}")
    emit(data, as_json, lambda: kv_table(data))


def answer(image: str, status: str, project: str | None, as_json: bool) -> None:
    """The member project answers a share: image id, not name (pending shares are not
    in the default list the name is looked up in)."""
    api = Api()
    if project is None:
        project = api.get("/v1/quota-sets")["quota_set"]["id"]  # the token's project
    data = api.call("PUT", f"/v1/images/{seg(image)}/members/{seg(project)}",
                    json={"status": status})
    emit(data, as_json, lambda: kv_table(data))


ImageIdArg = Annotated[str, typer.Argument(metavar="IMAGE_ID")]
MemberOpt = Annotated[str | None, typer.Option(
    "--project", help="The member project (default: the token's).")]


@image_app.command("member-accept")
@calls("PUT /v1/images/{image_id}/members/{member}", "GET /v1/quota-sets")
def image_member_accept(image: ImageIdArg, project: MemberOpt = None,
                        as_json: JsonOpt = False) -> None:
    """Accept an image shared with your project: it shows in `image list` and boots."""
    answer(image, "accepted", project, as_json)


@image_app.command("member-reject")
@calls("PUT /v1/images/{image_id}/members/{member}", "GET /v1/quota-sets")
def image_member_reject(image: ImageIdArg, project: MemberOpt = None,
                        as_json: JsonOpt = False) -> None:
    """Reject an image shared with your project."""
    answer(image, "rejected", project, as_json)


@image_app.command("member-remove")
@calls("DELETE /v1/images/{image_id}/members/{member}")
def image_member_remove(image: ImageArg, project: ProjectArg) -> None:
    """Stop sharing an image with a project."""
    api = Api()
    iid = image_id(api, image)
    api.call("DELETE", f"/v1/images/{iid}/members/{seg(project)}")
    out().print(f"image {iid} is no longer shared with project {escape(project)}")

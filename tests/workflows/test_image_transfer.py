"""activities/hypervisor/image_transfer.py against the real API process: what a host step uses to
upload a snapshot's file and to fetch an image, with the service token."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.hypervisor import image_transfer
from activities.hypervisor.snapshot import SnapshotActivities
from tests.workflows.conftest import session
from vmflow.contracts.errors import Errors
from vmflow.contracts.snapshots import SnapshotFile
from vmflow.models import Image
from vmflow.settings import Settings


def queued_image(s: Settings, disk_format: str = "qcow2") -> str:
    with session(s) as db_s:
        image = Image(name="transfer", disk_format=disk_format, visibility="private")
        db_s.add(image)
        db_s.commit()
        return image.id


def image_row(s: Settings, image_id: str) -> Image:
    with session(s) as db_s:
        image = db_s.get(Image, image_id)
        assert image is not None
        return image


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    path = tmp_path / "snap.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "32M"], check=True)
    return path


def test_upload_makes_the_image_active_and_a_repeat_is_success(
        wf_settings: Settings, image_api: str, disk: Path) -> None:
    image_id = queued_image(wf_settings)
    seen: list[int] = []
    image_transfer.upload_image_file(wf_settings, image_id, str(disk), progress=seen.append)
    row = image_row(wf_settings, image_id)
    data = disk.read_bytes()
    assert (row.status, row.size, row.checksum) == (
        "active", len(data), hashlib.sha256(data).hexdigest())
    assert seen and seen[-1] == len(data)
    image_transfer.upload_image_file(wf_settings, image_id, str(disk))  # a retried attempt

    out = io.BytesIO()
    digest = image_transfer.download(wf_settings, f"/v1/images/{image_id}/file", out)
    assert out.getvalue() == data and digest == row.checksum


def test_a_rejected_upload_is_image_invalid_with_the_reason(
        wf_settings: Settings, image_api: str, tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F",
                    "raw", str(hostile)], check=True)
    image_id = queued_image(wf_settings)
    with pytest.raises(ApplicationError) as e:
        image_transfer.upload_image_file(wf_settings, image_id, str(hostile))
    assert e.value.type == Errors.IMAGE_INVALID and e.value.non_retryable
    assert "has a backing file ('/etc/hostname')" in e.value.message
    row = image_row(wf_settings, image_id)
    assert row.status == "error" and "backing file" in (row.fault or "")
    with pytest.raises(ApplicationError) as e:  # a retry after the rejection: still invalid
        image_transfer.upload_image_file(wf_settings, image_id, str(hostile))
    assert e.value.type == Errors.IMAGE_INVALID and e.value.non_retryable


def test_unknown_image_and_bad_token_are_not_retried(
        wf_settings: Settings, image_api: str, disk: Path) -> None:
    with pytest.raises(ApplicationError) as e:
        image_transfer.upload_image_file(wf_settings, "00000000-0000-0000-0000-000000000000",
                                         str(disk))
    assert e.value.type == Errors.NOT_FOUND and e.value.non_retryable
    wrong = wf_settings.model_copy(update={"service_token": "not-a-token"})
    with pytest.raises(ApplicationError) as e:
        image_transfer.upload_image_file(wrong, queued_image(wf_settings), str(disk))
    assert e.value.type == image_transfer.SERVICE_AUTH and e.value.non_retryable
    nowhere = wf_settings.model_copy(update={"home": disk.parent / "no-home"})
    with pytest.raises(ApplicationError, match="no service token"):
        image_transfer.service_token(nowhere)


def test_a_snapshot_is_imported_where_the_store_is_shared_and_put_elsewhere(
        wf_settings: Settings, image_api: str, disk: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The host step hands its copy over by import on the API's own file system and
    falls back to PUT on a host with a store of its own; either way the image is
    active with the data's checksum and no copy is left on the host."""
    put: list[str] = []
    real_upload = image_transfer.upload_image_file

    def spy(s: Settings, image_id: str, path: str) -> None:  # records, then the real PUT
        put.append(image_id)
        real_upload(s, image_id, path)

    monkeypatch.setattr(image_transfer, "upload_image_file", spy)
    token = wf_settings.service_token_file.read_text().strip()
    elsewhere = wf_settings.model_copy(update={"home": tmp_path / "other-host",
                                               "service_token": token})
    data = disk.read_bytes()
    for settings, by_put in ((wf_settings, False), (elsewhere, True)):
        image_id = queued_image(wf_settings)
        instance_dir = tmp_path / f"instance-{by_put}"
        instance_dir.mkdir()
        acts = SnapshotActivities(settings, None,  # type: ignore[arg-type]
                                  lambda _, d=instance_dir: d)  # type: ignore[misc]
        final, _, meta = acts.files("i", image_id)
        final.write_bytes(data)
        # as the copy step leaves it: the sha256 it computed while writing
        meta.write_text(json.dumps({"checksum": hashlib.sha256(data).hexdigest()}))
        ActivityEnvironment().run(acts.upload_snapshot, SnapshotFile("i", image_id))
        row = image_row(wf_settings, image_id)
        assert (row.status, row.checksum) == ("active", hashlib.sha256(data).hexdigest())
        assert (image_id in put) == by_put
        assert list(instance_dir.iterdir()) == [] and not acts.staged(image_id).exists()
        # a retried attempt finds nothing left to hand over: success, nothing changes
        ActivityEnvironment().run(acts.upload_snapshot, SnapshotFile("i", image_id))
        assert image_row(wf_settings, image_id).checksum == row.checksum


def test_import_is_refused_for_data_not_staged(wf_settings: Settings, image_api: str) -> None:
    image_id = queued_image(wf_settings)
    assert image_transfer.import_staged(wf_settings, image_id) is False
    assert image_row(wf_settings, image_id).status == "queued"

"""activities/image_transfer.py against the real API process: what a host step uses to
upload a snapshot's file and to fetch an image, with the service token."""

from __future__ import annotations

import hashlib
import io
import subprocess
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities import image_transfer
from tests.workflows.conftest import session
from vmflow.contracts import Errors
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

"""/audit with --audit DIR: the findings of audit.csv, thumbnails by number, never a path from a request."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from imagefit.errors import DataError
from imagefit.serve.app import create_app
from imagefit.serve.audit import AuditFolder
from imagefit.serve.model import ServedModel
from tests._audit_folder import make_audit
from tests._serve import request, running, tiny_run


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    model = ServedModel.from_run(tiny_run(root / "tiny"), engine="torch", max_batch=4)
    with running(create_app(model, audit=AuditFolder(make_audit(root)))) as (port, log):
        yield port, log


def test_findings_in_audit_order_with_labels_to_choose(server) -> None:
    status, _, audit = request(server[0], "GET", "/audit/findings")
    assert status == 200
    assert [f["path"] for f in audit["findings"]][:2] == ["train/red/red_07.jpg", "train/blue/blue_03.jpg"]
    assert [f["id"] for f in audit["findings"]] == [0, 1, 2, 3]
    assert audit["findings"][0]["suggested"] == "blue" and audit["labels"] == ["blue", "red"]
    assert audit["actions"] == ["keep", "relabel", "remove"]


def test_thumbnails_by_number(server) -> None:
    port = server[0]
    status, heads, data = request(port, "GET", "/audit/thumb/0")
    assert status == 200 and heads["content-type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(data))
    assert max(thumb.size) <= 192 and thumb.size[0] > thumb.size[1]
    red, _, blue = thumb.convert("RGB").resize((1, 1)).getpixel((0, 0))
    assert blue > red  # the blue picture filed as red
    status, _, answer = request(port, "GET", "/audit/thumb/3")
    assert status == 404 and "missing" in answer["error"]  # the unusable file listed is gone
    assert request(port, "GET", "/audit/thumb/99")[0] == 404
    status, _, answer = request(port, "GET", "/audit/thumb/passwd")
    assert status == 422 and "number" in answer["error"] and len(answer) == 1
    assert request(port, "GET", "/audit/thumb/..%2F..%2Fetc%2Fpasswd")[0] == 404
    assert request(port, "GET", "/audit")[0] == 200


def test_a_folder_without_audit_csv_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"audit\.csv"):
        AuditFolder(tmp_path)

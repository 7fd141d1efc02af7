"""imagefit serve: a real uvicorn server on 127.0.0.1 over real sockets, with a tiny trained run."""

from __future__ import annotations

import io
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagefit.runs import load
from imagefit.serve.app import create_app
from imagefit.serve.limits import Limits
from imagefit.serve.model import ServedModel
from tests._serve import Load, jpeg_bytes, multipart, post_files, request, running, tiny_run

RED, BLUE = (220, 40, 30), (30, 60, 220)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def model(run: Path) -> ServedModel:
    return ServedModel.from_run(run, engine="torch", max_batch=8)


@pytest.fixture(scope="module")
def server(model: ServedModel):
    with running(create_app(model, Limits(max_upload_mb=2, max_files=8, queue=64))) as (port, log):
        yield port, log


def png_bytes(size: tuple[int, int], mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, "PNG")
    return out.getvalue()


def test_predict_answers_rows_like_predict_csv_in_input_order(server, run: Path, tmp_path: Path) -> None:
    port, _ = server
    red, blue = jpeg_bytes(RED), jpeg_bytes(BLUE)
    status, _, rows = post_files(port, [("a.jpg", red, "image/jpeg"), ("b.jpg", blue, "image/jpeg")])
    assert status == 200
    assert [r["path"] for r in rows] == ["a.jpg", "b.jpg"]
    assert [r["class"] for r in rows] == ["red", "blue"]
    (tmp_path / "a.jpg").write_bytes(red)
    (tmp_path / "b.jpg").write_bytes(blue)
    expected = load(run).predict([tmp_path / "a.jpg", tmp_path / "b.jpg"], engine="torch", progress=False)
    for row, want in zip(rows, expected.rows(), strict=True):
        assert set(row) == set(want)
        assert row["class"] == want["class"]
        assert row["p_red"] == pytest.approx(want["p_red"], abs=1e-4)


def test_one_raw_image_body(server) -> None:
    status, _, rows = request(server[0], "POST", "/predict", jpeg_bytes(BLUE), {"Content-Type": "image/jpeg"})
    assert status == 200 and len(rows) == 1 and rows[0]["class"] == "blue"


def test_model_and_health(server, model: ServedModel) -> None:
    status, _, info = request(server[0], "GET", "/model")
    assert status == 200
    assert info["classes"] == ["blue", "red"] and info["strategy"] == "linear"
    assert info["preprocessing"]["input_size"] == list(model.classifier.data_config["input_size"])
    assert info["format_version"] == 1 and info["engine"] == "channels_last"
    assert info["limits"]["max_files"] == 8
    status, _, health = request(server[0], "GET", "/health")
    assert status == 200 and health["status"] == "ok"


BAD_UPLOADS = [
    ("zero-byte file", ("empty.jpg", b"", "image/jpeg"), 400, "empty"),
    ("truncated JPEG", ("cut.jpg", jpeg_bytes(size=(300, 200))[:400], "image/jpeg"), 422, "truncated"),
    ("text file as image", ("notes.jpg", b"hello, not a picture\n", "image/jpeg"), 415, "not an image"),
    ("text content type", ("notes.txt", b"hello\n", "text/plain"), 415, "text/plain"),
    ("10000 x 10000 PNG", ("huge.png", png_bytes((10000, 10000), "1"), "image/png"), 413, "pixels"),
]


@pytest.mark.parametrize(
    ("upload", "status", "words"), [b[1:] for b in BAD_UPLOADS], ids=[b[0] for b in BAD_UPLOADS]
)
def test_bad_uploads_get_a_4xx_naming_the_problem_under_load(server, upload, status, words) -> None:
    port, log = server
    with Load(port, clients=3) as load_:
        time.sleep(0.3)
        got, heads, answer = post_files(port, [("fine.jpg", jpeg_bytes(), "image/jpeg"), upload])
        time.sleep(0.3)
    assert got == status, answer
    assert list(answer) == ["error"] and words in answer["error"] and upload[0] in answer["error"]
    assert heads["content-type"] == "application/json"
    assert load_.statuses and set(load_.statuses) == {200}, load_.failures[:3]
    assert not [s for s in log.statuses if s >= 500] and not log.errors


def test_wrong_request_content_type_and_no_image(server) -> None:
    port = server[0]
    status, _, answer = request(
        port, "POST", "/predict", b'{"path": "/etc/passwd"}', {"Content-Type": "application/json"}
    )
    assert status == 415 and "application/json" in answer["error"]
    body = b'--x\r\nContent-Disposition: form-data; name="path"\r\n\r\n/etc/passwd\r\n--x--\r\n'
    status, _, answer = request(
        port, "POST", "/predict", body, {"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert status == 400 and "no image" in answer["error"]


def test_too_many_files_and_too_large_a_body(server) -> None:
    port = server[0]
    status, _, answer = post_files(port, [(f"{i}.jpg", jpeg_bytes(), "image/jpeg") for i in range(9)])
    assert status == 400 and "8" in answer["error"]
    big = [("big.jpg", b"\xff" * (3 * 2**20), "image/jpeg")]
    status, _, answer = post_files(port, big)
    assert status == 413 and "limit" in answer["error"]


def test_body_larger_than_declared_limit_is_refused_before_it_is_read(server) -> None:
    port = server[0]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
        sock.sendall(f"{head}Content-Length: 999999999\r\n\r\n".encode())
        answer = b""
        while b"}" not in answer and (chunk := sock.recv(4096)):
            answer += chunk
    answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413") and '"error"' in answer


def test_a_client_disconnecting_mid_upload_leaves_the_server_answering(server) -> None:
    port, log = server
    body, ctype = multipart([("photo.jpg", jpeg_bytes(size=(400, 300)) * 20, "image/jpeg")])
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
            head += f"Content-Length: {len(body)}\r\n\r\n"
            sock.sendall(head.encode() + body[: len(body) // 3])
            time.sleep(0.2)
    time.sleep(0.5)
    status, _, rows = post_files(port, [("after.jpg", jpeg_bytes(RED), "image/jpeg")])
    assert status == 200 and rows[0]["class"] == "red"
    assert not [s for s in log.statuses if s >= 500] and not log.errors


def test_unknown_route_and_method_answer_json(server) -> None:
    status, _, answer = request(server[0], "GET", "/predict")
    assert status == 405 and "error" in answer
    status, _, answer = request(server[0], "GET", "/static/../../etc/passwd")
    assert status == 404


def gated(model: ServedModel) -> tuple[ServedModel, threading.Event]:
    """`model` whose answers (what the batcher asks for) wait until the returned event is set."""
    gate = threading.Event()
    inner = model.answers

    def answers(pictures):
        gate.wait(60)
        return inner(pictures)

    clone = object.__new__(ServedModel)
    clone.__dict__.update(model.__dict__)
    clone.answers = answers
    return clone, gate


def test_requests_beyond_the_queue_bound_get_503_with_retry_after(model: ServedModel) -> None:
    bound, extra = 8, 200
    slow, gate = gated(model)
    app = create_app(slow, Limits(queue=bound, max_batch=4, max_wait_ms=0))
    with running(app) as (port, log), ThreadPoolExecutor(32) as pool:
        data = jpeg_bytes(RED)
        futures = [
            pool.submit(post_files, port, [("q.jpg", data, "image/jpeg")]) for _ in range(bound + extra)
        ]
        deadline = time.monotonic() + 60
        while sum(f.done() for f in futures) < extra and time.monotonic() < deadline:
            time.sleep(0.05)
        refused = [f.result() for f in futures if f.done()]
        gate.set()
        results = [f.result() for f in futures]
    assert len(refused) == extra
    assert all(s == 503 and h["retry-after"] == "1" and "busy" in a["error"] for s, h, a in refused)
    statuses = [s for s, _, _ in results]
    assert statuses.count(200) == bound and statuses.count(503) == extra
    assert not [s for s in log.statuses if s >= 500 and s != 503] and not log.errors


def test_a_request_waiting_past_the_timeout_gets_503(model: ServedModel) -> None:
    slow, gate = gated(model)
    with running(create_app(slow, Limits(timeout_s=0.5))) as (port, _):
        start = time.monotonic()
        status, heads, answer = post_files(port, [("t.jpg", jpeg_bytes(), "image/jpeg")])
        waited = time.monotonic() - start
        gate.set()
        assert status == 503 and "0.5 s" in answer["error"] and heads["retry-after"]
        assert 0.4 < waited < 10
        status, _, _ = post_files(port, [("t.jpg", jpeg_bytes(), "image/jpeg")])
        assert status == 200


def test_bearer_token_guards_data_but_not_the_page(model: ServedModel) -> None:
    with running(create_app(model, token="s3cret")) as (port, _):
        status, heads, answer = post_files(port, [("a.jpg", jpeg_bytes(), "image/jpeg")])
        assert status == 401 and heads["www-authenticate"].startswith("Bearer") and "token" in answer["error"]
        assert request(port, "GET", "/model", headers={"Authorization": "Bearer wrong"})[0] == 401
        good = {"Authorization": "Bearer s3cret"}
        assert post_files(port, [("a.jpg", jpeg_bytes(), "image/jpeg")], good)[0] == 200
        assert request(port, "GET", "/model", headers=good)[0] == 200
        assert request(port, "GET", "/")[0] == 200 and request(port, "GET", "/health")[0] == 200


def test_concurrent_requests_share_batches(model: ServedModel) -> None:
    slow, gate = gated(model)
    app = create_app(slow, Limits(max_batch=8, max_wait_ms=50))
    with running(app) as (port, _), ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(post_files, port, [(f"{i}.jpg", jpeg_bytes(RED), "image/jpeg")]) for i in range(8)
        ]
        time.sleep(1.0)
        gate.set()
        assert [f.result()[0] for f in futures] == [200] * 8
        batcher = app.state.batcher
        assert batcher.images == 8 and batcher.batches <= 3


def test_page_is_served_without_external_references(server) -> None:
    port = server[0]
    status, heads, html = request(port, "GET", "/")
    assert status == 200 and heads["content-type"].startswith("text/html")
    text = html.decode()
    for asset in ("/static/style.css", "/static/common.js", "/static/predict.js"):
        assert asset in text
        assert request(port, "GET", asset)[0] == 200
    for name in ("index.html", "audit.html", "style.css", "common.js", "predict.js", "audit.js"):
        source = request(port, "GET", f"/static/{name}")[2].decode()
        assert "http://" not in source and "https://" not in source and "@import" not in source
    status, _, answer = request(port, "GET", "/audit")
    assert status == 404 and "--audit" in answer["error"]


def test_served_probabilities_match_the_array_api(server, model: ServedModel) -> None:
    pixels = np.zeros((40, 50, 3), np.uint8)
    pixels[...] = RED
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    _, _, rows = post_files(server[0], [("a.png", out.getvalue(), "image/png")])
    direct = model.classifier.predict(pixels, engine="torch")
    assert rows[0]["p_red"] == pytest.approx(float(direct.probabilities[0, 1]), abs=1e-4)


def test_batches_run_in_fixed_sizes_with_the_same_answers(model: ServedModel) -> None:
    """An engine keeps buffers per input shape: 13 images run as 8 + 4 + 1, every size warmed at start."""
    from PIL import Image

    from imagefit.serve.model import batch_sizes, split_batch

    assert batch_sizes(32) == [1, 2, 4, 8, 16, 32] and batch_sizes(24) == [1, 2, 4, 8, 16, 24]
    assert split_batch(13, 32) == [8, 4, 1] and split_batch(31, 24) == [24, 4, 2, 1]
    pictures = [Image.new("RGB", (40 + k, 30), (20 * k, 250 - 15 * k, 90)) for k in range(13)]
    seen: list[int] = []
    predict_images = model.classifier.predict_images

    def spy(chunk, **kw):
        seen.append(len(chunk))
        return predict_images(chunk, **kw)

    model.classifier.predict_images = spy
    try:
        together = model.predict(pictures)
    finally:
        del model.classifier.predict_images
    assert seen == [8, 4, 1]  # model.max_batch is 8
    one_by_one = np.concatenate([model.predict([p]) for p in pictures])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    assert together.shape == (13, len(model.classes))

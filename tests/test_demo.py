"""`imagefit demo` through the command line on the images shipped with imagefit, and the README's
serve and curl example run against the run it writes, over a real socket."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DATA = ROOT / "imagefit" / "demo" / "data"
COLOURS = {  # the key's values, in its order, and their colours in the map's colour table (tab10)
    1000: "#1F77B4", 2000: "#FF7F0E", 3000: "#2CA02C", 4000: "#D62728", 5000: "#9467BD", 6000: "#8C564B",
}  # fmt: skip


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`imagefit demo` run once in a fresh folder, as the README's first command runs it."""
    cwd = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "imagefit", "demo", "--no-progress"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return cwd, proc.stdout


def test_shipped_data_is_small_and_licensed() -> None:
    files = [p for p in DATA.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 3 * 1024 * 1024
    readme = (DATA / "README.md").read_text()
    assert "public domain" in readme and "CC0" in readme
    photos = sorted(p.relative_to(DATA / "photos").parts[:2] for p in (DATA / "photos").rglob("*.jpg"))
    assert len(photos) == 6 * (16 + 6)


def test_demo_trains_audits_searches_predicts_and_maps(demo_dir: tuple[Path, str]) -> None:
    import rasterio

    cwd, stdout = demo_dir
    demo = cwd / "demo"
    metrics = json.loads((demo / "run" / "metrics.json").read_text())
    accuracy = metrics["valid"]["accuracy"]
    assert accuracy >= 0.9  # six distinct land uses, 16 photos each: transfer learning separates them
    assert f"validation accuracy {accuracy:.4f}" in stdout
    for name in ("run/report.html", "run/model.safetensors", "audit/audit.html", "similar.png"):
        assert (demo / name).is_file(), name
    audit = (demo / "audit" / "audit.csv").read_text()
    assert re.search(r"near_duplicate,train/airplane/airplane0[12]\.jpg", audit)  # the set's own copy
    lines = stdout.splitlines()
    # each shown photo's 4 nearest training photos: mostly its own class
    at = next(i for i, x in enumerate(lines) if x.startswith("3. similar images"))
    for line, name in zip(lines[at + 1 : at + 4], ("beach", "harbor", "airplane"), strict=True):
        assert line.startswith(f"   demo/photos/valid/{name}/"), line
        near = line.split(": ")[1].split(", ")
        assert len(near) == 4 and near.count(name) >= 3, line
    at = lines.index("4. predictions of demo/run:")
    predicted = [x.split(": ")[1].split() for x in lines[at + 1 : at + 4]]
    assert [label for label, _ in predicted] == ["beach", "harbor", "airplane"]
    assert all(float(p) > 0.5 for _, p in predicted)

    # the map: a GeoTIFF of the whole image with the key's values and colours
    tif = demo / "map" / "T2P07-map.tif"
    with rasterio.open(tif) as ds:
        assert (ds.width, ds.height) == (509, 544)
        values = set(np.unique(ds.read(1)).tolist())
        table = ds.colormap(1)
    assert values <= set(COLOURS) and len(values) >= 4
    for value, colour in COLOURS.items():
        assert "#{:02X}{:02X}{:02X}".format(*table[value][:3]) == colour
    assert (demo / "map" / "T2P07-map.png").is_file()
    found = re.search(r"pixel accuracy ([\d.]+) on the west half \(held out.*?([\d.]+) on the whole", stdout)
    held_out, whole = float(found.group(1)), float(found.group(2))
    assert held_out >= 0.45  # a minute of training on the other half: far above chance (6 classes)
    whole_metrics = json.loads((demo / "map" / "metrics.json").read_text())
    assert whole == pytest.approx(whole_metrics["pixel_accuracy"], abs=1e-4)
    map_run = json.loads((demo / "map-run" / "config.json").read_text())["options"]["map"]
    assert (map_run["train"], map_run["valid"]) == (["T2P07-east"], "T2P07-west")

    assert "imagefit serve demo/run" in stdout
    assert re.search(r"done in \d+ s", stdout)


def readme_serve_example() -> tuple[str, str]:
    """The README's serve command and curl command (the block that serves demo/run)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    block = next(b for b in blocks if "imagefit serve demo/run" in b)
    serve = next(line for line in block.splitlines() if "imagefit serve" in line)
    curl = next(line for line in block.splitlines() if line.startswith("curl "))
    return serve.split("&")[0].strip(), curl


def start_readme_server(serve: str, cwd: Path) -> tuple[subprocess.Popen, list[str], int]:
    """The README's serve command, run in `cwd` by this Python, on a free port (`--port 0`; the
    README's is the default, 8000, which a parallel test run may hold)."""
    words = shlex.split(serve)
    assert words[0].endswith("imagefit")
    command = [sys.executable, "-m", "imagefit", *words[1:], "--port", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    deadline = time.monotonic() + 600  # at its first start it measures engines, int8 included
    while time.monotonic() < deadline and proc.poll() is None:
        found = [re.search(r"imagefit serve: http://127\.0\.0\.1:(\d+)/", line) for line in lines]
        if any(found):
            return proc, lines, int(next(m for m in found if m).group(1))
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the server did not start:\n" + "".join(lines))


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl, as the README's example does")
def test_readme_serve_and_curl_example_answers_on_the_demo_run(demo_dir: tuple[Path, str]) -> None:
    cwd, _ = demo_dir
    serve, curl = readme_serve_example()
    assert serve.split()[-2:] == ["serve", "demo/run"]
    assert "http://127.0.0.1:8000/predict" in curl
    proc, lines, port = start_readme_server(serve, cwd)
    try:
        command = shlex.split(curl.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
        answer = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
    finally:
        proc.terminate()
        code = proc.wait(60)
    assert answer.returncode == 0, answer.stderr
    rows = json.loads(answer.stdout)
    sent = [Path(word.split("@")[1]) for word in command if word.startswith("file=@")]
    assert len(sent) == 2 and [row["path"] for row in rows] == [p.name for p in sent]
    assert [row["class"] for row in rows] == [p.parent.name for p in sent]  # each photo's own class
    assert all(row["probability"] > 0.5 and row["unknown"] == 0 for row in rows), rows
    assert code == 0 and '"POST /predict HTTP/1.1" 200' in "".join(lines)


def test_python_name_is_the_demo_function() -> None:
    import importlib

    import imagefit

    tour = importlib.import_module("imagefit.demo.tour")  # binding the submodule keeps the function
    assert imagefit.demo is tour.demo
    assert callable(imagefit.demo)


def test_a_second_demo_replaces_its_own_map_run_and_no_other(
    demo_dir: tuple[Path, str], tmp_path: Path
) -> None:
    from imagefit.demo.tour import clear_map_run
    from imagefit.errors import OptionError

    cwd, _ = demo_dir
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    shutil.copytree(cwd / "demo" / "map-run", ours)
    shutil.copytree(cwd / "demo" / "map-run", theirs)
    config = json.loads((theirs / "config.json").read_text())
    config["options"]["map"]["train"] = ["T1P01"]
    (theirs / "config.json").write_text(json.dumps(config))
    assert clear_map_run(ours) and not ours.exists()
    assert not clear_map_run(ours)  # nothing there: nothing to do
    with pytest.raises(OptionError, match="not the demo's"):
        clear_map_run(theirs)
    assert (theirs / "checkpoints" / "last.safetensors").is_file()

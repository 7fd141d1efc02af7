"""Distributed training under torchrun (gloo, 2 processes) against one process, and its failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from imagefit.features.cache import FeatureCache
from imagefit.runs import read_history
from imagefit.train import train
from imagefit.train.engine import distributed
from tests.conftest import TINY_MODEL, make_folder

ROOT = Path(__file__).resolve().parents[1]
# Full-batch SGD on a network without BatchNorm or dropout: two ranks of 10 images average to the
# same gradient as one process of 20, so both runs must reach the same weights up to float order.
TRAIN = [
    "train",
    "--strategy",
    "scratch",
    "--arch",
    "conv6@3-pool2-dense12",
    "--image-size",
    "16",
    "--epochs",
    "4",
    "--batch-size",
    "20",
    "--lr",
    "0.05",
    "--optimizer",
    "sgd",
    "--no-augment",
    "-j",
    "0",
]


def torchrun(n: int, args: list[str], tmp_path: Path, module: str = "imagefit", timeout: float = 120):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "IMAGEFIT_CACHE": str(tmp_path / "cache"),
        "IMAGEFIT_DIST_TIMEOUT": "30",
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}"]
    cmd += ["-m", module, *args] if module else args
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=tmp_path)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "data")


def test_two_processes_train_like_one(data: Path, tmp_path: Path) -> None:
    runs = {}
    for n in (1, 2):
        out = tmp_path / f"run{n}"
        result = torchrun(n, [*TRAIN, str(data), "--out", str(out)], tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.count("run folder:") == 1  # rank 0 alone reports
        runs[n] = out
    one, two = (json.loads((runs[n] / "metrics.json").read_text()) for n in (1, 2))
    assert one["valid"]["n"] == two["valid"]["n"] == 8  # the whole valid split, not one rank's shard
    assert one["valid"]["accuracy"] == two["valid"]["accuracy"]
    assert abs(one["valid"]["loss"] - two["valid"]["loss"]) < 1e-4
    h1, h2 = (read_history(runs[n] / "history.csv") for n in (1, 2))
    assert len(h1) == len(h2) == 4
    for a, b in zip(h1, h2, strict=True):  # reduced over ranks: the same means as one process
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-4)
    w1, w2 = (load_file(str(runs[n] / "model.safetensors")) for n in (1, 2))
    assert max(float(np.abs(w1[k] - w2[k]).max()) for k in w1) < 1e-4
    assert h1[-1]["loss"] < h1[0]["loss"]  # it did learn something
    assert not list(runs[2].rglob("*.tmp"))


def test_a_rank_without_the_data_stops_every_rank_at_once(data: Path, tmp_path: Path) -> None:
    script = tmp_path / "rank_sees.py"  # rank 1 is given a folder that does not exist on its machine
    script.write_text(
        "import os, sys\n"
        "from imagefit.cli import main\n"
        "if os.environ['RANK'] == '1':\n"
        "    sys.argv = [a.replace('data', 'missing') for a in sys.argv]\n"
        "main()\n"
    )
    started = time.perf_counter()
    result = torchrun(2, [str(script), *TRAIN, str(data)], tmp_path, module="")
    assert time.perf_counter() - started < 60  # not the 30 s collective timeout twice, nor a hang
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 2, result.stderr[-2000:]  # both ranks, one line each
    assert all("rank 1 of 2 failed at reading the dataset" in line and "missing" in line for line in lines)
    assert "exitcode  : 2" in result.stderr


def test_helpers_outside_a_distributed_run() -> None:
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    assert distributed.shard([1, 2, 3]) == [1, 2, 3]
    np.testing.assert_array_equal(distributed.all_sum([1.0, 2.0]), [1.0, 2.0])
    assert distributed.agree(lambda: 7, "a step") == 7


def _stored(cache: Path) -> int:
    """Vectors in the feature store (of the one model the test used)."""
    [folder] = (cache / "features").iterdir()
    return len(FeatureCache(folder.name, root=cache).store)


def test_linear_features_are_sharded_and_rank_0_fits(data: Path, tmp_path: Path) -> None:
    args = ["train", str(data), "--model", TINY_MODEL, "--weights", "none", "--engine", "torch", "-j", "0"]
    result = torchrun(2, [*args, "--out", str(tmp_path / "run2")], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _stored(tmp_path / "cache") == 28  # each image once; rank 0 found the other's share there
    two = json.loads((tmp_path / "run2" / "metrics.json").read_text())
    assert two["features"] == {"reused": 28, "computed": 0}
    one = train(data, model=TINY_MODEL, weights="none", engine="torch", workers=0, cache=False, progress=0)
    assert two["valid"]["accuracy"] == one.metrics["valid"]["accuracy"]
    assert two["valid"]["loss"] == pytest.approx(one.metrics["valid"]["loss"], abs=1e-4)


def test_finetune_head_features_are_sharded_over_the_ranks(data: Path, tmp_path: Path) -> None:
    args = ["train", str(data), "--strategy", "finetune", "--model", TINY_MODEL, "--weights", "none"]
    args += ["--stages", "head:1:1e-2", "--batch-size", "4", "-j", "0"]
    result = torchrun(2, [*args, "--out", str(tmp_path / "run2")], tmp_path, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _stored(tmp_path / "cache") == 20  # the linear probe's train features, each image once
    metrics = json.loads((tmp_path / "run2" / "metrics.json").read_text())
    assert metrics["valid"]["n"] == 8 and metrics["epochs"] == 1


def test_features_under_torchrun_embed_shares_into_one_store(data: Path, tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    weights = tmp_path / "tiny.safetensors"  # the same model on both ranks (untrained ones differ)
    save_file(timm.create_model(TINY_MODEL).state_dict(), str(weights))
    args = ["features", TINY_MODEL, str(data), "-o", str(tmp_path / "emb"), "--weights", str(weights)]
    result = torchrun(2, [*args, "--engine", "torch", "-j", "0"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("embeddings of size") == 1  # rank 0 alone writes the file
    from imagefit.features.store import load_embeddings

    written = load_embeddings(tmp_path / "emb")
    assert len(written.paths) == len(set(written.paths)) == _stored(tmp_path / "cache") == 28

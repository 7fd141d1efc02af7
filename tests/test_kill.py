"""Kill tests: processes SIGKILLed at random moments never leave a checkpoint or a cache entry half-written.

A tiny scratch run (real CLI, subprocess) is killed and resumed several times; after every kill the last
checkpoint loads into the run's model and the history is readable. A process writing feature-cache
the store in a loop is killed the same way; the store reads back whole appends only. A
linear run killed at a random moment is run again and finishes from a readable cache.
IMAGEFIT_KILL_SEED fixes the random moments (the seed is in every failure message).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from imagefit.features.cache import FeatureCache
from imagefit.runs import read_config, read_history
from imagefit.train.callbacks import load_weights
from imagefit.train.engine.state import load_state
from tests.conftest import TINY_MODEL, make_folder

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("IMAGEFIT_KILL_SEED", time.time_ns() % 10_000))


@pytest.fixture(autouse=True)
def _default_sigchld():
    """DataLoaders of earlier tests leave torch's SIGCHLD handler (a check of its worker processes)
    installed in this process; the children these tests kill are not DataLoader workers. The full
    suite crashed here with SIGSEGV while that handler was installed."""
    previous = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGCHLD, previous)


def _env(cache: Path) -> dict:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "IMAGEFIT_CACHE": str(cache),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }


def _start(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "imagefit", "-q", *map(str, args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended early: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the process")
        time.sleep(0.02)


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()


def _assert_run_loadable(run: Path) -> int:
    """The last and best checkpoints load into the run's model; returns the last epoch."""
    from imagefit.models.small_cnn import SmallCNN

    config = read_config(run)
    model = SmallCNN.from_description(config.options["small_cnn"], num_classes=len(config.classes))
    meta = load_weights(run / "checkpoints" / "last.safetensors", model)
    load_weights(run / "checkpoints" / "best.safetensors", model)
    state = load_state(run / "checkpoints" / "last.safetensors")
    assert len(state["history"]) == meta["epoch"]
    rows = read_history(run / "history.csv")  # written just before the checkpoint: equal or one ahead
    assert len(rows) in (meta["epoch"], meta["epoch"] + 1)
    return meta["epoch"]


def test_scratch_run_killed_again_and_again_always_resumes(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    data = make_folder(tmp_path / "data", n_train=6, n_valid=2)
    run, env = tmp_path / "run", _env(tmp_path / "cache")
    last = run / "checkpoints" / "last.safetensors"
    fresh = ["train", data, "--strategy", "scratch", "--arch", "conv4@3-pool2-dense8", "--image-size", "16"]
    fresh += ["--epochs", "100000", "-j", "0", "--out", run]
    epochs, delays = [0], []
    for round_ in range(3):
        proc = _start(fresh if round_ == 0 else ["train", "--resume", run, "-j", "0"], env)
        mtime = last.stat().st_mtime_ns if last.exists() else 0
        _wait_for(lambda m=mtime: last.exists() and last.stat().st_mtime_ns != m, proc)
        delays.append(round(rng.uniform(0.0, 0.6), 3))
        time.sleep(delays[-1])
        _kill(proc)
        epoch = _assert_run_loadable(run)
        assert epoch > epochs[-1], f"round {round_}: no progress (seed {SEED}, delays {delays})"
        epochs.append(epoch)
    assert not (run / "model.safetensors").exists()  # the run never finished: only checkpoints


def _write_shards_forever(cache: Path, key: str) -> None:
    store = FeatureCache(key, cache)
    rng = np.random.default_rng()
    while True:
        digests = [rng.bytes(16).hex() for _ in range(1000)]
        store.put(digests, rng.standard_normal((1000, 512)).astype(np.float32))


def test_feature_store_writer_killed_leaves_only_whole_appends(tmp_path: Path, caplog) -> None:
    rng = random.Random(SEED)
    cache, key = tmp_path / "cache", "k" * 32
    fork = multiprocessing.get_context("fork")  # numpy and sqlite only in the child: fork is safe
    before = 0
    for _ in range(4):
        proc = fork.Process(target=_write_shards_forever, args=(cache, key), daemon=True)
        proc.start()
        deadline = time.monotonic() + 60
        while not (cache / "features" / key).exists() or len(FeatureCache(key, cache).store) <= before:
            assert proc.is_alive() and time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        store = FeatureCache(key, cache).store
        n = len(store)
        assert n > before and n % 1000 == 0, f"seed {SEED}"  # whole appends only
        vectors = np.concatenate([v for _, v in store.batches(10_000)])
        assert vectors.shape == (n, 512) and np.isfinite(vectors).all()
        before = n


def test_linear_run_killed_during_extraction_finishes_from_the_cache(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    data = make_folder(tmp_path / "data", n_train=6, n_valid=3)
    env = _env(tmp_path / "cache")
    args = ["train", data, "--model", TINY_MODEL, "--weights", "none", "--engine", "torch", "-j", "0"]
    proc = _start([*args, "--out", tmp_path / "killed"], env)
    time.sleep(rng.uniform(2.0, 6.0))  # start-up, scan, extraction or the head fit: wherever it is
    _kill(proc)
    done = subprocess.run(
        [sys.executable, "-m", "imagefit", "-q", *map(str, args), "--out", str(tmp_path / "run")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "unreadable" not in done.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert sum(metrics["features"].values()) == 18 and metrics["train"]["n"] == 12

"""The run-wide callback hooks: on_run_begin and on_run_end around every strategy's lifecycle."""

from __future__ import annotations

from pathlib import Path

import pytest

import imagefit
from imagefit.train.callbacks import Callback
from tests._training import InterruptAt
from tests.conftest import TINY_MODEL

SCRATCH = {"arch": "conv8@3-pool2-dense16", "image_size": 24, "epochs": 2}


class RunRecorder(Callback):
    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def on_run_begin(self, trainer, logs):
        self.calls.append(("begin", dict(logs)))

    def on_run_end(self, trainer, logs):
        self.calls.append(("end", dict(logs)))

    def on_epoch_end(self, trainer, logs):
        self.calls.append(("epoch", dict(logs)))


def test_a_linear_run_gets_both_run_hooks_and_no_epochs(tiny_data: Path, tmp_path: Path) -> None:
    recorder = RunRecorder()
    result = imagefit.train(
        tiny_data, out=tmp_path / "run", model=TINY_MODEL, weights="none", engine="torch", workers=0,
        progress=False, callbacks=[recorder],
    )  # fmt: skip
    assert [name for name, _ in recorder.calls] == ["begin", "end"]
    begin, end = recorder.calls[0][1], recorder.calls[1][1]
    assert begin["run_dir"] == tmp_path / "run" and begin["strategy"] == "linear" and not begin["resumed"]
    assert begin["data"] == {"classes": 2, "layout": "train/ + valid/", "train_images": 20, "valid_images": 8,
                             "test_images": 0}  # fmt: skip
    config = begin["config"]  # as config.json starts (calibration and familiarity come at the end)
    assert config["backbone"] == TINY_MODEL and config["classes"] == ["blue", "red"]
    assert config["options"]["weights"] == "none"
    assert end["status"] == "FINISHED" and end["metrics"] is result.metrics


def test_an_interrupted_run_ends_killed(tiny_data: Path, tmp_path: Path) -> None:
    recorder = RunRecorder()
    with pytest.raises(KeyboardInterrupt):
        imagefit.train(
            tiny_data, strategy="scratch", out=tmp_path / "run", workers=0, progress=False,
            callbacks=[recorder, InterruptAt(epoch=2, batch=0)], **SCRATCH,
        )  # fmt: skip
    assert [name for name, _ in recorder.calls] == ["begin", "epoch", "end"]
    assert recorder.calls[-1][1] == {"run_dir": tmp_path / "run", "metrics": {}, "status": "KILLED"}

"""Progress bars per epoch, with loss/acc while training and val_loss/val_acc at the end, like Keras."""

from __future__ import annotations

import io
import re

from imagefit.train.callbacks import ProgressBar
from tests._training import tiny_trainer, two_stages


def final_lines(text: str) -> list[str]:
    """What a terminal shows: the last state of each bar (tqdm redraws with carriage returns)."""
    return [line.split("\r")[-1] for line in text.split("\n") if line.strip()]


def test_one_bar_per_epoch_with_the_epoch_metrics():
    out = io.StringIO()
    trainer = tiny_trainer([ProgressBar(file=out)], epochs=2)
    history = trainer.fit()
    lines = final_lines(out.getvalue())
    assert len(lines) == 2
    for line, row in zip(lines, history, strict=True):
        assert line.startswith(f"epoch {row['epoch']}/2")
        assert "6/6" in line
        for key in ("loss", "acc", "val_loss", "val_acc"):
            shown = re.search(rf"\b{key}=([0-9.]+)", line)
            assert shown and float(shown.group(1)) == round(row[key], 4), key


def test_stages_are_named_and_a_disabled_bar_prints_nothing():
    out = io.StringIO()
    tiny_trainer([ProgressBar(file=out)], stages=two_stages()).fit()
    assert [line.split(":")[0] for line in final_lines(out.getvalue())] == [
        "epoch 1/4 [head]",
        "epoch 2/4 [head]",
        "epoch 3/4 [all]",
        "epoch 4/4 [all]",
    ]
    quiet = io.StringIO()
    tiny_trainer([ProgressBar(file=quiet, disable=True)], epochs=1).fit()
    assert quiet.getvalue() == ""

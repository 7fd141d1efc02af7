"""Track runs in TensorBoard event files: the history per epoch, final metrics, parameters, the config.

The events of RUN go to DIR/<RUN's name>/, DIR by default `tensorboard/` beside the run folder, so
`tensorboard --logdir tensorboard` shows every run trained there side by side. Per-epoch scalars
keep the history's names (loss, acc, val_loss, val_acc, lr, seconds), final metrics are under
`final/` (final/valid.accuracy), the parameters are a text table and TensorBoard's HParams, and
the config is text; TensorBoard has no artifact store, so the text `files` lists the run's files.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from imagefit.train.callbacks.base import Callback
from imagefit.train.callbacks.tracked import epoch_metrics, need, numbers, run_files, run_params

LOGDIR = "tensorboard"  # the default folder, beside the run folder


class TensorBoardTracker(Callback):
    """A TensorBoard event folder per imagefit run, named as the run folder."""

    main_process_only = True  # one writer in a distributed run

    def __init__(self, logdir: str | Path | None = None):
        need("tensorboard", "tensorboard", "TensorBoard")
        self.logdir = Path(logdir) if logdir is not None else None
        self.writer, self.params = None, {}

    def on_run_begin(self, trainer, logs: dict) -> None:
        from torch.utils.tensorboard import SummaryWriter

        run_dir = Path(logs["run_dir"]).resolve()
        base = self.logdir if self.logdir is not None else run_dir.parent / LOGDIR
        self.writer = SummaryWriter(log_dir=str(base / run_dir.name))
        self.params = run_params(logs)
        table = "\n".join(f"| {k} | {v.replace('|', '/')} |" for k, v in self.params.items())
        self.writer.add_text("params", "| parameter | value |\n|---|---|\n" + table)
        self.writer.add_text("config", _code(json.dumps(logs.get("config") or {}, indent=2, default=str)))
        self.writer.flush()

    def on_epoch_end(self, trainer, logs: dict) -> None:
        if self.writer is None:
            return
        for key, value in epoch_metrics(logs).items():
            self.writer.add_scalar(key, value, int(logs["epoch"]))
        self.writer.flush()

    def on_run_end(self, trainer, logs: dict) -> None:
        if self.writer is None:
            return
        from torch.utils.tensorboard.summary import hparams

        metrics = logs.get("metrics") or {}
        final = {f"final/{k}": v for k, v in numbers(metrics).items()}
        step = metrics.get("epochs") or 0
        for key, value in final.items():
            self.writer.add_scalar(key, value, step)
        for summary in hparams(self.params, final):  # the HParams dashboard: parameters against results
            self.writer.file_writer.add_summary(summary)
        files = "\n".join(f"- {path}" for path in run_files(logs["run_dir"]))
        self.writer.add_text("files", f"status {logs.get('status', 'FINISHED')}\n\n{files}")
        self.writer.close()
        logging.getLogger(__name__).info("tracked in TensorBoard: %s", self.writer.log_dir)
        self.writer = None


def _code(text: str) -> str:
    """Text shown as-is in TensorBoard's Markdown: every line indented four spaces."""
    return "\n".join("    " + line for line in text.splitlines())

"""The training loop: engineering (device, precision, stages, state, callbacks) apart from the model.

The caller brings the research code: a model, batches of (images, labels), a loss and an optimiser
spec. The Trainer runs stages of epochs, validates after each, and tells callbacks what happened;
checkpoints, early stopping, the history file and progress bars are callbacks. Its whole state
(model, optimiser, schedule, RNG, position, history) round-trips through `state_dict`, so a run
resumed from a checkpoint ends exactly where an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from imagefit.errors import ModelError, OptionError
from imagefit.runs.folder import CHECKPOINTS
from imagefit.runs.folder import LAST as LAST_CHECKPOINT
from imagefit.train.engine import distributed
from imagefit.train.engine.optim import OptimSpec, make_optimizer, make_schedule
from imagefit.train.engine.stages import Stage, freeze_except, frozen_norms_to_eval, param_groups
from imagefit.train.engine.state import load_state
from imagefit.train.multilabel.scores import LabelScores, count_label_hits

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class AuxLoss(Protocol):
    """A loss term beside the batch's (e.g. on unlabelled images), given the model in training and
    the share of the planned steps done; None adds nothing. `epoch_logs()`, if it has one, adds to
    the history row."""

    def __call__(self, model: nn.Module, progress: float) -> torch.Tensor | None: ...


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices): the same seed gives the same run on a CPU."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Fits `model` on batches of (x, y) from `train_data`, stage by stage, validating each epoch.

    `stages` are `Stage`s (see `parse_stages` for a spec string); None: one stage of `epochs`.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Iterable,
        valid_data: Iterable | None = None,
        *,
        optim: OptimSpec | None = None,
        stages: Sequence[Stage] | None = None,
        epochs: int = 10,
        loss: nn.Module | None = None,
        eval_loss: nn.Module | None = None,
        callbacks: Sequence = (),
        device: str | torch.device | None = None,
        precision: str = "auto",
        seed: int | None = None,
        multilabel: bool = False,
        aux_loss: AuxLoss | None = None,
        miou_classes: int | None = None,
    ):
        self.optim = optim or OptimSpec()
        self.stages = list(stages) if stages is not None else [Stage("train", epochs)]
        if not self.stages or len({s.name for s in self.stages}) != len(self.stages):
            raise OptionError("stages need distinct names, and there must be at least one")
        self.device = torch.device(device) if device is not None else distributed.device()
        self.amp_dtype = _amp_dtype(precision, self.device)
        self.channels_last = self.device.type == "cuda"
        memory = torch.channels_last if self.channels_last else torch.preserve_format
        self.model = model.to(self.device, memory_format=memory)
        self.train_data, self.valid_data = train_data, valid_data
        _distribute(distributed.active(), train_data, valid_data)  # before a resume counts the steps
        self._ddp: nn.Module | None = None  # the model wrapped for gradient averaging across ranks
        self.loss_fn = (loss or nn.CrossEntropyLoss()).to(self.device)
        self.eval_loss_fn = eval_loss.to(self.device) if eval_loss is not None else self.loss_fn
        self.callbacks = sorted(callbacks, key=lambda cb: getattr(cb, "order", 0))
        self.seed = seed
        self.multilabel = multilabel  # targets are 0/1 rows; acc is per label; validation adds mAP
        self.aux_loss = aux_loss  # a term added to every training step's loss (unlabelled images)
        self.miou_classes = miou_classes  # validation adds val_miou over this many classes
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler = None
        self.history: list[dict] = []
        self.epoch = self.stage_index = self.stage_epoch = 0
        self.stop_training = self.stop_stage = False
        self.stop_reason: str | None = None
        self._resumed = False
        self._batch: int | None = None
        self._check_stages()

    @property
    def stage(self) -> Stage:
        return self.stages[self.stage_index]

    @property
    def total_epochs(self) -> int:
        return sum(s.epochs for s in self.stages)

    def fit(self) -> list[dict]:
        """Train to the end (or a stop) and return the history, one dict per epoch.

        Ctrl-C stops at once, keeps the last checkpoint written, tells the callbacks and re-raises.
        """
        if self.seed is not None and not self._resumed:
            seed_everything(self.seed)
        self.stop_reason = None
        names = [s.name for s in self.stages]
        self._call("on_train_begin", {"epochs": self.total_epochs, "epoch": self.epoch, "stages": names})
        _distribute(distributed.active(), self.train_data, self.valid_data)
        try:
            while not self.stop_training:
                if self.stage_epoch >= self.stage.epochs or self.stop_stage:
                    if self.stage_index == len(self.stages) - 1:
                        break
                    self._next_stage()
                    continue
                if self.optimizer is None:
                    self._enter_stage()
                if not self._run_epoch():
                    break
        except KeyboardInterrupt:
            self.stop_reason = "interrupted"
            self._call("on_train_end", {"epoch": self.epoch, "stopped": self.stop_reason})
            raise
        finally:
            _distribute(False, self.train_data, self.valid_data)
        self._call("on_train_end", {"epoch": self.epoch, "stopped": self.stop_reason})
        return self.history

    def replan(self, epochs: int) -> None:
        """Train `epochs` epochs in all (at least the ones done, plus one unless a stage ended): the
        stages still to come are scaled to fit, and the current stage's learning-rate schedule is
        stretched or shrunk to its new length from the step it has reached (a time budget's use)."""
        done = sum(s.epochs for s in self.stages[: self.stage_index]) + self.stage_epoch
        later = self.stages[self.stage_index :]
        old = sum(s.epochs for s in later) - self.stage_epoch
        new = max(epochs - done, 0 if self._batch is None else 1)  # an epoch under way ends
        if new == old or old <= 0:
            return
        scaled = [max(1, round(s.epochs * new / old)) if i else 0 for i, s in enumerate(later)]
        current = max(self.stage_epoch + new - sum(scaled), self.stage_epoch, 1)
        scaled[0] = current
        self.stages[self.stage_index :] = [replace(s, epochs=n) for s, n in zip(later, scaled, strict=True)]
        if self.scheduler is not None:  # the schedule of the stage in progress, at the step it is at
            steps = _steps_per_epoch(self.train_data)
            position = self.scheduler.last_epoch
            self.scheduler = make_schedule(self.optim)(self.optimizer, current * steps)
            self.scheduler.last_epoch = position - 1
            self.scheduler.step()

    @property
    def progress(self) -> float:
        """The share of the planned training steps done, 0 to 1 (a schedule of the aux loss reads it)."""
        steps = _steps_per_epoch(self.train_data)
        done = self.epoch * steps + (self._batch or 0)
        return min(1.0, done / max(1, self.total_epochs * steps))

    def resume(self, path: str | Path) -> Trainer:
        """Continue from a checkpoint file, or the last checkpoint in a run or checkpoint folder."""
        self.load_state_dict(load_state(find_checkpoint(path)))
        return self

    def state_dict(self) -> dict:
        """Everything needed to continue exactly here: tensors and plain values only."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": _rng_state(),
            "history": [dict(row) for row in self.history],
            "stages": [[s.name, s.epochs] for s in self.stages],
            "position": {
                "epoch": self.epoch,
                "stage_index": self.stage_index,
                "stage_epoch": self.stage_epoch,
                "stop_stage": self.stop_stage,
                "stop_training": self.stop_training,
            },
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict`: the next `fit` goes on from the same epoch of the same stage."""
        saved = [tuple(s) for s in state["stages"]]
        if [s[0] for s in saved] != [s.name for s in self.stages]:
            mine = [s.name for s in self.stages]
            raise ModelError(f"the checkpoint has stages {[s[0] for s in saved]}, this run has {mine}")
        self.model.load_state_dict(state["model"])
        # a replanned run (a time budget) resumes with the epochs it had planned, not those it began with
        self.stages = [replace(s, epochs=int(n)) for s, (_, n) in zip(self.stages, saved, strict=True)]
        self.history = [dict(row) for row in state["history"]]
        pos = state["position"]
        self.epoch, self.stage_index, self.stage_epoch = pos["epoch"], pos["stage_index"], pos["stage_epoch"]
        self.stop_stage, self.stop_training = pos["stop_stage"], pos["stop_training"]
        self.optimizer = self.scheduler = None
        if state["optimizer"] is not None and self.stage_epoch < self.stage.epochs and not self.stop_stage:
            self._enter_stage()
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        self._resumed = True

    def _check_stages(self) -> None:
        """Fail before training on a stage without a learning rate or one that picks no parameters."""
        for stage in self.stages:
            if stage.lr is None and self.optim.lr is None:
                raise OptionError(f"stage {stage.name!r} has no learning rate, and the optimiser none")
            param_groups(self.model, stage, self._stage_lr(stage))

    def _stage_lr(self, stage: Stage) -> float:
        return stage.lr if stage.lr is not None else self.optim.lr

    def _next_stage(self) -> None:
        self.stage_index += 1
        self.stage_epoch = 0
        self.stop_stage = False
        self.optimizer = self.scheduler = None

    def _enter_stage(self) -> None:
        stage = self.stage
        lr = self._stage_lr(stage)
        groups = param_groups(self.model, stage, lr)
        freeze_except(self.model, groups)
        self.optimizer = make_optimizer(self.optim, groups, lr)
        steps = stage.epochs * _steps_per_epoch(self.train_data)
        self.scheduler = make_schedule(self.optim)(self.optimizer, steps)
        if distributed.active():  # rewrapped per stage: DDP tracks the parameters that train now
            ids = [self.device.index] if self.device.type == "cuda" else None
            self._ddp = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    def _run_epoch(self) -> bool:
        """One epoch of training and validation; False when it was stopped before its end."""
        steps = _steps_per_epoch(self.train_data)
        begin = {"epoch": self.epoch + 1, "epochs": self.total_epochs, "stage": self.stage.name}
        self._call("on_epoch_begin", {**begin, "steps": steps})
        started = time.perf_counter()
        self.model.train()
        frozen_norms_to_eval(self.model)
        totals = np.zeros(3)  # loss sum, correct, samples
        lr = _max_lr(self.optimizer)
        if hasattr(self.train_data, "set_epoch"):
            self.train_data.set_epoch(self.epoch)  # a distributed sampler's shuffle differs per epoch
        for i, batch in enumerate(self.train_data):
            x, y = self._to_device(batch)
            self._call("on_batch_begin", {"batch": i, "size": len(y)})
            lr = _max_lr(self.optimizer)
            self._batch = i
            loss, correct = self._train_step(x, y)
            totals += (loss * count_targets(y), correct, count_targets(y))
            loss_mean, acc = totals[:2] / max(totals[2], 1)
            logs = {"batch": i, "size": len(y), "batch_loss": loss, "loss": loss_mean, "acc": acc, "lr": lr}
            self._call("on_batch_end", logs)
            if distributed.active():  # every rank stops at the same batch, or none does
                self.stop_training = distributed.any_rank(self.stop_training, "a training batch")
            if self.stop_training:
                return False
        totals = distributed.all_sum(totals, "the epoch's training metrics")
        row = {"epoch": self.epoch + 1, "stage": self.stage.name, "lr": lr}
        row.update(loss=_mean(totals[0], totals[2]), acc=_mean(totals[1], totals[2]))
        if self.aux_loss is not None and hasattr(self.aux_loss, "epoch_logs"):
            row.update(self.aux_loss.epoch_logs())
        row.update(self._validate())
        self._batch = None
        row["seconds"] = round(time.perf_counter() - started, 3)
        self.epoch += 1
        self.stage_epoch += 1
        self.history.append(row)
        self._call("on_epoch_end", dict(row))
        return True

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        with self._autocast():
            out = (self._ddp or self.model)(x)
            loss = self.loss_fn(out, y)
            if self.aux_loss is not None:
                extra = self.aux_loss(self._ddp or self.model, self.progress)
                loss = loss if extra is None else loss + extra
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach()), self._correct(out.detach(), y)

    def _correct(self, out: torch.Tensor, y: torch.Tensor) -> float:
        return count_label_hits(out, y) if self.multilabel else count_correct(out, y)

    def evaluate(self, data: Iterable) -> dict:
        """Mean loss and accuracy of the model (in eval mode) over batches of (x, y), and their count
        (multi-label: per-label accuracy at 0.5, and mAP and samples-F1)."""
        self.model.eval()
        totals = np.zeros(3)
        labels = LabelScores() if self.multilabel else None
        confusion = None if self.miou_classes is None else torch.zeros(self.miou_classes**2, dtype=torch.long)
        with torch.inference_mode():
            for batch in data:
                x, y = self._to_device(batch)
                with self._autocast():
                    out = self.model(x)
                loss = self.eval_loss_fn(out.float(), y)
                totals += (float(loss) * count_targets(y), self._correct(out, y), count_targets(y))
                if labels is not None:
                    labels.add(out, y)
                if confusion is not None:
                    confusion += _confusion(out, y, self.miou_classes)
        sharded = getattr(data, "sharded", False)
        if sharded:  # each rank saw its share: add them up
            totals = distributed.all_sum(totals, "evaluation metrics")
        n = int(totals[2])
        scores = {"loss": _mean(totals[0], n), "acc": _mean(totals[1], n), "n": n}
        if confusion is not None:
            if sharded:
                confusion = torch.from_numpy(distributed.all_sum(confusion.numpy(), "the confusion matrix"))
            scores["miou"] = mean_iou(confusion.view(self.miou_classes, -1).numpy())
        return {**scores, **labels.result(sharded)} if labels is not None else scores

    def _validate(self) -> dict:
        keys = ("loss", "acc", "mAP", "samples_f1") if self.multilabel else ("loss", "acc")
        keys += ("miou",) if self.miou_classes is not None else ()
        if self.valid_data is None:
            return {f"val_{k}": None for k in keys}
        scores = self.evaluate(self.valid_data)
        return {f"val_{k}": scores[k] for k in keys}

    def _to_device(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _call(self, hook: str, logs: dict) -> None:
        for callback in self.callbacks:
            if getattr(callback, "main_process_only", False) and not distributed.is_main():
                continue
            method = getattr(callback, hook, None)
            if method is not None:
                method(self, logs)


def _distribute(shard: bool, *datasets) -> None:
    """Shard batches that know how over the ranks (train reshuffled per epoch, others split), or unshard."""
    for data in datasets:
        if data is not None and getattr(data, "sharded", False) != shard and hasattr(data, "distribute"):
            data.distribute(shard)


def find_checkpoint(path: str | Path) -> Path:
    """The last checkpoint: `path` itself, or last.safetensors in it or in its checkpoints/ folder."""
    path = Path(path)
    for candidate in (path, path / LAST_CHECKPOINT, path / CHECKPOINTS / LAST_CHECKPOINT):
        if candidate.is_file():
            return candidate
    raise ModelError(f"no checkpoint in {path}: expected {LAST_CHECKPOINT} (was the run started?)")


def _amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision on CUDA only: bf16 where supported, else fp16 with a gradient scaler."""
    if precision not in PRECISIONS:
        raise OptionError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def _steps_per_epoch(data: Iterable) -> int:
    try:
        return len(data)  # type: ignore[arg-type]
    except TypeError as exc:
        raise OptionError("training batches need a length (a DataLoader, a list) for the schedule") from exc


def _confusion(out: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    """Counts of (true, predicted) class pairs, flattened, over the targets that are labelled (>= 0)."""
    keep = y >= 0
    pairs = y[keep].long() * n + out.argmax(1)[keep]
    return torch.bincount(pairs.cpu(), minlength=n * n)


def mean_iou(confusion: np.ndarray) -> float | None:
    """The mean IoU of the classes seen in truth or prediction of a confusion matrix (rows: truth)."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    seen = union > 0
    return float((tp[seen] / union[seen]).mean()) if seen.any() else None


def count_correct(out: torch.Tensor, y: torch.Tensor) -> int:
    """Right predictions: class indices (a negative index is ignored), or soft targets' top classes."""
    if y.is_floating_point():
        return int((out.argmax(1) == y.argmax(1)).sum())
    return int(((out.argmax(1) == y) & (y >= 0)).sum())


def count_targets(y: torch.Tensor) -> int:
    """Targets in a batch: one per sample, or per labelled position of dense (per-pixel) targets."""
    return len(y) if y.is_floating_point() or y.ndim == 1 else int((y >= 0).sum())


def _mean(total: float, n: float) -> float | None:
    return float(total / n) if n else None


def _max_lr(optimizer: torch.optim.Optimizer) -> float:
    return max(float(g["lr"]) for g in optimizer.param_groups)


def _rng_state() -> dict:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    numpy = np.random.get_state()
    return {"python": random.getstate(), "numpy": numpy, "torch": torch.get_rng_state(), "cuda": cuda}


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])

"""Distributed training under torchrun: the process group from its environment, rank helpers, timeouts.

`torchrun --nproc-per-node N -m imagefit train ...` starts N processes with RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT set. `init()` joins them in a process group (gloo on a CPU,
nccl on GPUs, one GPU per local rank). Every collective gives up after `IMAGEFIT_DIST_TIMEOUT`
seconds (default 300) with a message instead of hanging, and `agree()` makes a mistake seen by one
rank (say, a data folder it cannot read) an error on all of them at once.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist

from imagefit.errors import DataError, ImagefitError

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 300


class DistributedError(ImagefitError):
    """The ranks of a distributed run could not work together (a rank failed, timed out or disagrees)."""


def launched() -> bool:
    """True in a process started by torchrun (or another launcher) as part of a world of 2 or more."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """True once this process has joined a process group of 2 or more ranks."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank in the world (0 outside distributed runs)."""
    return dist.get_rank() if active() else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """Processes in the world (1 outside distributed runs)."""
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """True on the rank that writes files and prints: rank 0."""
    return rank() == 0


def timeout_s() -> float:
    """Seconds a rank waits for the others at a collective before giving up."""
    return float(os.environ.get("IMAGEFIT_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))


def init() -> bool:
    """Join the torchrun world if this process was launched in one; True when distributed."""
    if not launched() or active():
        return active()
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s()))
    except Exception as exc:
        raise DistributedError(
            f"could not join the distributed world ({backend}): {_first_line(exc)}"
        ) from exc
    atexit.register(shutdown)  # leave the group cleanly: a rank exiting with it live can abort the others
    log.info("rank %d of %d (%s)", rank(), world_size(), backend)
    return True


def device() -> torch.device:
    """This rank's device: its local GPU when there are GPUs, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) if launched() else 0)
    return torch.device("cpu")


def barrier(what: str) -> None:
    """Wait for every rank at `what`; a rank that never comes is an error after the timeout."""
    if active():
        _collective(what, lambda: dist.monitored_barrier(timeout=_timedelta()) if _gloo() else dist.barrier())


def all_sum(values: np.ndarray | list[float], what: str = "metrics") -> np.ndarray:
    """Element-wise sum of `values` over all ranks (float64); `values` itself when not distributed."""
    array = np.asarray(values, dtype=np.float64)
    if not active():
        return array
    tensor = torch.from_numpy(array.copy()).to(_collective_device())
    _collective(what, lambda: dist.all_reduce(tensor, op=dist.ReduceOp.SUM))
    return tensor.cpu().numpy()


def any_rank(flag: bool, what: str = "stop") -> bool:
    """True on every rank when `flag` is true on any rank."""
    return bool(all_sum([float(flag)], what)[0] > 0) if active() else flag


def agree(step: Callable[[], T], what: str) -> T:
    """Run `step` on every rank; if it fails with a user error on any rank, fail on all with its message.

    Each rank tells the others whether its step worked before anyone goes on, so one rank that
    cannot read the data stops the run at once instead of leaving the others waiting.
    """
    if not active():
        return step()
    result, error = None, None
    try:
        result = step()
    except ImagefitError as exc:
        error = str(exc)
    errors: list[str | None] = [None] * world_size()
    _collective(what, lambda: dist.all_gather_object(errors, error))
    failed = [(r, e) for r, e in enumerate(errors) if e is not None]
    if failed:
        r, message = failed[0]
        raise DataError(f"rank {r} of {world_size()} failed at {what}: {message}")
    return result


def same_everywhere(value: object, what: str) -> None:
    """Fail on every rank unless all ranks hold an equal `value` (say, the dataset's classes and size)."""
    if not active():
        return
    values: list[object] = [None] * world_size()
    _collective(what, lambda: dist.all_gather_object(values, value))
    for r, other in enumerate(values):
        if other != values[0]:
            raise DataError(f"ranks see different {what}: rank 0 {values[0]!r}, rank {r} {other!r}")


def shard(items: list[T]) -> list[T]:
    """This rank's share of `items`: every world_size-th item from its rank."""
    return items[rank() :: world_size()]


def shutdown() -> None:
    """Leave the process group (at exit of a distributed run)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _collective(what: str, call: Callable[[], object]) -> None:
    try:
        call()
    except Exception as exc:
        raise DistributedError(
            f"rank {rank()} gave up waiting for the other ranks at {what} after at most {timeout_s():.0f} s "
            f"(another rank failed or cannot see the data?): {_first_line(exc)}"
        ) from exc


def _gloo() -> bool:
    return dist.get_backend() == "gloo"


def _collective_device() -> torch.device:
    return device() if dist.get_backend() == "nccl" else torch.device("cpu")


def _timedelta() -> datetime.timedelta:
    return datetime.timedelta(seconds=timeout_s())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


class ShardSampler(torch.utils.data.Sampler):
    """This rank's positions of a dataset for evaluation: every world_size-th, none repeated."""

    def __init__(self, n: int):
        self.indices = list(range(rank(), n, world_size()))

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self):
        return iter(self.indices)


def distributed_loader(dataset, collate_fn: Callable, options: dict) -> torch.utils.data.DataLoader:
    """A DataLoader over this rank's shard: shuffled per epoch when `options` shuffle, else split.

    Each rank gets batch_size / world_size images per batch, so that one optimiser step still sees
    batch_size images in all and a run with N processes follows the same schedule as one process.
    """
    from torch.utils.data import DataLoader, DistributedSampler

    options = dict(options)
    shuffle = options.pop("shuffle", False)
    batch = options.pop("batch_size", 1)
    per_rank = max(1, batch // world_size())
    if batch % world_size():
        log.warning("batch size %d does not split over %d ranks: %d per rank", batch, world_size(), per_rank)
    sampler = DistributedSampler(dataset, shuffle=True, seed=0) if shuffle else ShardSampler(len(dataset))
    return DataLoader(dataset, batch_size=per_rank, sampler=sampler, collate_fn=collate_fn, **options)

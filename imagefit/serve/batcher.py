"""Dynamic batching: images from concurrent requests gathered into batches for one model thread.

The model thread takes every image waiting when it becomes free, and while requests are still
being decoded (`incoming`), waits up to `max_wait_s` for them to join, never past `max_batch`.
One client alone therefore waits for nobody; sixteen share batches.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)

_STOP = object()


class QueueFull(Exception):
    """More images would wait for the model than the queue bound allows."""


class Batcher:
    """Runs `predict(items) -> results` (one result per item) over batches of submitted items."""

    def __init__(self, predict: Callable[[list], Sequence], max_batch: int, max_wait_s: float, bound: int):
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.bound = bound
        self.batches = 0  # batches run so far, and images in them
        self.images = 0
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._pending = 0  # submitted, not yet answered
        self._incoming = 0  # requests being read or decoded, about to submit
        self._thread = threading.Thread(target=self._run, name="imagefit-batcher", daemon=True)

    @property
    def pending(self) -> int:
        return self._pending

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Answer everything submitted, then end the model thread."""
        self._queue.put(_STOP)
        self._thread.join()

    @contextlib.contextmanager
    def incoming(self) -> Iterator[None]:
        """Mark a request whose images are being read: batches wait briefly for them."""
        with self._lock:
            self._incoming += 1
        try:
            yield
        finally:
            with self._lock:
                self._incoming -= 1

    def submit(self, items: Sequence) -> list[Future]:
        """One future per item; raises QueueFull (accepting none) past the bound."""
        with self._lock:
            if self._pending + len(items) > self.bound:
                raise QueueFull(
                    f"{self._pending} images are waiting for the model (the bound is {self.bound})"
                )
            self._pending += len(items)
        futures = [Future() for _ in items]
        for item, future in zip(items, futures, strict=True):
            self._queue.put((item, future))
        return futures

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stopping = self._gather(first)
            self._answer(batch)

    def _gather(self, first: tuple) -> tuple[list[tuple], bool]:
        """`first` and the items that join it; True when the stop mark was met."""
        batch, deadline = [first], time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                wait = deadline - time.monotonic()
                if self._incoming == 0 or wait <= 0:
                    break
                try:
                    item = self._queue.get(timeout=min(wait, 0.001))
                except queue.Empty:
                    continue
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _answer(self, batch: list[tuple[Any, Future]]) -> None:
        live = [(item, future) for item, future in batch if future.set_running_or_notify_cancel()]
        try:
            if live:
                results = self.predict([item for item, _ in live])
                for (_, future), result in zip(live, results, strict=True):
                    future.set_result(result)
                self.batches, self.images = self.batches + 1, self.images + len(live)
        except Exception as exc:  # the requests of this batch get the error; the thread goes on
            log.exception("batch of %d images failed", len(live))
            for _, future in live:
                future.set_exception(exc)
        finally:
            with self._lock:
                self._pending -= len(batch)

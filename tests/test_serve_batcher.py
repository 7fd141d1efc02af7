"""The dynamic batcher alone: batches gathered from concurrent submitters, the bound, cancellation."""

from __future__ import annotations

import threading
import time

import pytest

from imagefit.serve.batcher import Batcher, QueueFull


class Recorder:
    def __init__(self, gate: threading.Event | None = None):
        self.batches: list[list[int]] = []
        self.gate = gate

    def __call__(self, items):
        if self.gate is not None:
            self.gate.wait(10)
        self.batches.append(list(items))
        return [x * 10 for x in items]


def test_items_waiting_while_the_model_is_busy_form_one_batch() -> None:
    gate = threading.Event()
    model = Recorder(gate)
    batcher = Batcher(model, max_batch=4, max_wait_s=0, bound=100)
    batcher.start()
    first = batcher.submit([0])
    time.sleep(0.1)  # the model thread holds item 0
    rest = [batcher.submit([i])[0] for i in range(1, 10)]
    gate.set()
    assert first[0].result(5) == 0 and [f.result(5) for f in rest] == [i * 10 for i in range(1, 10)]
    batcher.stop()
    assert model.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]
    assert batcher.batches == 4 and batcher.images == 10 and batcher.pending == 0


def test_a_lone_request_does_not_wait_for_others() -> None:
    batcher = Batcher(Recorder(), max_batch=32, max_wait_s=5.0, bound=100)
    batcher.start()
    start = time.monotonic()
    assert batcher.submit([3])[0].result(5) == 30
    assert time.monotonic() - start < 1.0  # nobody is decoding: no 5 s wait
    batcher.stop()


def test_a_batch_waits_for_requests_being_decoded() -> None:
    model = Recorder()
    batcher = Batcher(model, max_batch=8, max_wait_s=2.0, bound=100)
    batcher.start()
    with batcher.incoming():
        first = batcher.submit([1])
        time.sleep(0.2)
        second = batcher.submit([2])
    assert first[0].result(5) == 10 and second[0].result(5) == 20
    batcher.stop()
    assert model.batches == [[1, 2]]


def test_the_bound_refuses_whole_requests_and_frees_with_answers() -> None:
    gate = threading.Event()
    batcher = Batcher(Recorder(gate), max_batch=2, max_wait_s=0, bound=3)
    batcher.start()
    held = batcher.submit([1, 2])
    with pytest.raises(QueueFull, match="bound is 3"):
        batcher.submit([3, 4])
    assert batcher.pending == 2
    last = batcher.submit([5])
    gate.set()
    assert [f.result(5) for f in held + last] == [10, 20, 50]
    batcher.stop()
    assert batcher.pending == 0


def test_cancelled_items_are_skipped_and_errors_reach_their_requests() -> None:
    gate = threading.Event()
    calls = Recorder(gate)

    def model(items):
        if 13 in items:
            raise RuntimeError("bad batch")
        return calls(items)

    batcher = Batcher(model, max_batch=1, max_wait_s=0, bound=10)
    batcher.start()
    running = batcher.submit([1])
    time.sleep(0.1)
    cancelled = batcher.submit([2])[0]
    assert cancelled.cancel()
    failing = batcher.submit([13])[0]
    gate.set()
    assert running[0].result(5) == 10
    with pytest.raises(RuntimeError, match="bad batch"):
        failing.result(5)
    assert batcher.submit([4])[0].result(5) == 40  # the thread goes on
    batcher.stop()
    assert calls.batches == [[1], [4]] and batcher.pending == 0

"""Experiment tracking: `--track mlflow[:URI]` or `--track tensorboard[:DIR]` as training callbacks.

A tracker logs what a run is (its options, backbone and data, as parameters), each epoch's history
row, the final metrics and the run folder's files (`tracked` shapes them). This module reads the specs and
makes the trackers; `mlflow_tracker` and `tensorboard_tracker` hold one backend each, imported only when
asked for, so that neither library is needed unless it is used (`pip install 'imagefit[mlflow]'`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from imagefit.errors import OptionError
from imagefit.train.callbacks.base import Callback

TRACK_ENV = "IMAGEFIT_TRACK"  # the default of --track, e.g. "mlflow" or "tensorboard:runs/tb"
BACKENDS = ("mlflow", "tensorboard")


def parse_track(spec: str) -> tuple[str, str | None]:
    """('mlflow' or 'tensorboard', the URI or folder after the first colon, or None)."""
    kind, _, target = spec.strip().partition(":")
    if kind not in BACKENDS:
        raise OptionError(
            f"--track {spec}: track with mlflow[:URI] or tensorboard[:DIR] (or none), e.g. --track mlflow"
        )
    return kind, target or None


def trackers(track: str | Sequence[str] | None = None) -> list[Callback]:
    """The tracker callbacks that `track` asks for; None: those of $IMAGEFIT_TRACK (none if unset).

    A string may name several, separated by spaces; 'none' or '' names none.
    """
    if track is None:
        track = os.environ.get(TRACK_ENV, "")
    specs = track.split() if isinstance(track, str) else [s for t in track for s in t.split()]
    made: list[Callback] = []
    for spec in specs:
        if spec == "none":
            continue
        kind, target = parse_track(spec)
        if kind == "mlflow":
            from imagefit.train.callbacks.mlflow_tracker import MLflowTracker

            made.append(MLflowTracker(target))
        else:
            from imagefit.train.callbacks.tensorboard_tracker import TensorBoardTracker

            made.append(TensorBoardTracker(target))
    return made

"""A run's classifier as a cached ONNX graph: a few images predicted without importing torch or timm.

The first prediction of a run loads it with PyTorch and caches its graph, keyed by the content of
model.safetensors and config.json, under $IMAGEFIT_CACHE/graphs/; later ones run the graph on
ONNX Runtime with the same preprocessing done in NumPy (`imagefit.data.preprocess`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from imagefit.data.digests import file_digest
from imagefit.data.preprocess import supports
from imagefit.errors import ImagefitError
from imagefit.features.locations import cache_root
from imagefit.inference.onnx_classifier import OnnxClassifier, graph_metadata, is_onnx_model
from imagefit.runs.familiarity import run_familiarity
from imagefit.runs.folder import CONFIG, ENGINES_FILE, JUDGE_WORTH, WEIGHTS, judged_images

log = logging.getLogger(__name__)


def engines_matter(run_dir: str | Path, n_images: int) -> bool:
    """Whether predicting `n_images` with the run's automatic engine goes through its judged engines
    (judged already, or now for a large job) rather than the quick fp32 graph."""
    run_dir = Path(run_dir)
    judged = (run_dir / ENGINES_FILE).is_file()
    return judged or (n_images >= JUDGE_WORTH and judged_images(run_dir) >= JUDGE_WORTH)


def predictor(run_dir: str | Path, quick: bool = True):
    """What predicts with a run: its cached graph when there is one (no torch), else the run loaded
    with PyTorch, whose graph is then cached for next time. `quick=False`: always PyTorch."""
    graph = graph_path(run_dir) if quick else None
    if graph is not None and graph.is_file():
        try:
            classifier = OnnxClassifier(graph)
            classifier.familiarity = run_familiarity(run_dir)
            if classifier.familiarity is None or classifier.has_features:
                return classifier
        except ImagefitError as exc:  # a damaged cache file: the run itself is still good
            log.warning("cached graph %s is unreadable (%s): using the run", graph, exc)
    from imagefit.runs.saved import load

    classifier = load(run_dir)
    if graph is not None:
        cache_graph(classifier, graph)
    return classifier


def graph_path(run_dir: str | Path) -> Path | None:
    """Where the run's graph is cached; None for runs this path does not serve (other preprocessing,
    exported files, anything unreadable: those load as usual and say why)."""
    run_dir = Path(run_dir)
    try:
        if is_onnx_model(run_dir) or not (run_dir / WEIGHTS).is_file():
            return None
        config = json.loads((run_dir / CONFIG).read_text(encoding="utf-8"))
        data_config = {k: tuple(v) if isinstance(v, list) else v for k, v in config["data_config"].items()}
        if not supports(data_config):
            return None
        key = f"{file_digest(run_dir / WEIGHTS)}-{file_digest(run_dir / CONFIG)}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return cache_root() / "graphs" / f"{key}.onnx"


def cache_graph(classifier, graph: Path) -> None:
    """Export the classifier's graph with its classes, preprocessing and thresholds; a failure only warns."""
    from imagefit.features.engines import export_onnx

    metadata = graph_metadata(classifier.classes, classifier.data_config, classifier.thresholds)
    input_size = tuple(classifier.data_config["input_size"])
    net, outputs = classifier.model.eval(), "logits"
    if classifier.familiarity is not None:  # the features too, for the run's familiarity
        net, outputs = _with_features(net), ("logits", "features")
    try:
        graph.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(net, input_size, graph, outputs, True, 1, metadata)
    except Exception as exc:  # the exporter or the disk refused: predictions go on in PyTorch
        log.warning("could not cache the run's graph for fast predictions (%s)", str(exc).splitlines()[0])


def _with_features(model):
    """`model` as a network answering (logits, pre-logits features)."""
    from torch import nn

    from imagefit.features.layers import Embedding

    class LogitsAndFeatures(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = Embedding(model)

        def forward(self, x):
            features = self.embedding(x)
            return model.get_classifier()(features), features

    return LogitsAndFeatures().eval()

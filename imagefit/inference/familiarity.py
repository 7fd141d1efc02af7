"""How familiar an image is to a run: is it like the images the classifier was trained on?

Two signals, each computed from what the classifier already has:
- `knn`: the cosine similarity of the image's features (pre-logits) to its nearest training
  image's (Sun et al. 2022), high for images like the training ones, whatever their class;
- `msp`: the calibrated maximum probability (Hendrycks and Gimpel 2017), high when one class fits.

Distance catches images of other domains that a head would still call confidently; the probability
catches images of unseen classes that look like the training domain. Each signal becomes a p-value
against the validation images (how unusually low it is among them), and the two are combined by
Fisher's method (the chi-squared p-value of -2 ln(p1 p2)), so that either signal alone can call an
image unknown: familiarity is comparable across the images of one run, uniform-like on known images.
An image is unknown below the threshold that keeps `recall` of the validation images known.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

SIGNALS = ("knn", "msp")
DEFAULT_RECALL = 0.95
DEFAULT_K = 1  # the nearest training image: measured best on near unknowns (bench.trust)
COMBINATIONS = ("fisher", "min", "mean", "max")
DEFAULT_COMBINATION = "fisher"


def max_probability(probs: np.ndarray) -> np.ndarray:
    """The top class's probability (multi-label: the highest label's)."""
    return np.asarray(probs, np.float64).max(1)


def energy(logits: np.ndarray) -> np.ndarray:
    """The negative free energy, log-sum-exp of the logits (Liu et al. 2020): higher is more familiar."""
    z = np.asarray(logits, np.float64)
    top = z.max(1, keepdims=True)
    return (top + np.log(np.exp(z - top).sum(1, keepdims=True)))[:, 0]


def knn_similarity(reference, features: np.ndarray, k: int = DEFAULT_K) -> np.ndarray:
    """Cosine similarity of each row of `features` to its k-th nearest vector in `reference`
    (a cosine NeighbourIndex of the training features)."""
    k = min(k, len(reference))
    distances, _ = reference.search(features, k)
    return 1.0 - distances[:, k - 1].astype(np.float64)


def p_values(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """How unusually low each value is among `reference` (sorted): (count at or below + 1) / (n + 1)."""
    return (np.searchsorted(reference, values, side="right") + 1.0) / (len(reference) + 1.0)


def combine(p: list[np.ndarray], how: str) -> np.ndarray:
    """One familiarity from the signals' p-values: Fisher's method (`fisher`), the lowest, the mean, or
    the highest (`max`: unknown only when both signals are unusually low)."""
    if how == "fisher":  # the chi-squared (4 degrees of freedom) p-value of -2 ln(p1 p2)
        q = p[0] * p[1]
        return q * (1.0 - np.log(q))
    if how == "min":
        return np.minimum(p[0], p[1])
    if how == "max":
        return np.maximum(p[0], p[1])
    return (p[0] + p[1]) / 2.0


def conformal_threshold(known: np.ndarray, recall: float) -> float:
    """The k-th lowest of the known images' scores, k = floor((n + 1) (1 - recall)): a new known image
    falls below it with probability at most 1 - recall. With too few known images (k = 0) nothing
    can be called unknown at that recall, and the threshold is 0."""
    k = int(np.floor((len(known) + 1) * (1.0 - recall) + 1e-9))
    if k == 0:
        log.warning(
            "%d validation images are too few to call any image unknown at recall %g: give at least %d",
            len(known), recall, int(np.ceil(1.0 / (1.0 - recall))) - 1,
        )  # fmt: skip
        return 0.0
    return float(np.sort(known)[k - 1])


@dataclass
class Familiarity:
    """What a run keeps to judge new images: training features, validation images' signals, a threshold."""

    train_features: np.ndarray  # (n, d) float32, the training images' pre-logits features
    valid_knn: np.ndarray  # sorted
    valid_msp: np.ndarray  # sorted
    threshold: float
    recall: float = DEFAULT_RECALL
    k: int = DEFAULT_K
    how: str = DEFAULT_COMBINATION

    def __post_init__(self):
        from imagefit.features.neighbours import NeighbourIndex

        self.index = NeighbourIndex(self.train_features, metric="cosine")

    @classmethod
    def fit(
        cls,
        train_features: np.ndarray,
        valid_features: np.ndarray,
        valid_probs: np.ndarray,
        recall: float = DEFAULT_RECALL,
        k: int = DEFAULT_K,
        how: str = DEFAULT_COMBINATION,
    ) -> Familiarity:
        """Rank the validation images' signals and set the threshold that keeps `recall` of them known."""
        from imagefit.features.neighbours import NeighbourIndex

        index = NeighbourIndex(train_features, metric="cosine")
        valid_knn = np.sort(knn_similarity(index, valid_features, k))
        valid_msp = np.sort(max_probability(valid_probs))
        made = cls(np.asarray(train_features, np.float32), valid_knn, valid_msp, 0.0, recall, k, how)
        made.threshold = conformal_threshold(made.scores(valid_features, valid_probs), recall)
        return made

    def signals(self, features: np.ndarray, probs: np.ndarray) -> dict[str, np.ndarray]:
        """Each signal of each image, raw."""
        return {"knn": knn_similarity(self.index, features, self.k), "msp": max_probability(probs)}

    def scores(self, features: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Familiarity in (0, 1] of each image: its signals' p-values among validation images, combined."""
        raw = self.signals(features, probs)
        p = [p_values(self.valid_knn, raw["knn"]), p_values(self.valid_msp, raw["msp"])]
        return combine(p, self.how)

    def record(self) -> dict:
        """What config.json keeps (the arrays go to their own file)."""
        return {
            "threshold": self.threshold,
            "recall": self.recall,
            "k": self.k,
            "signals": list(SIGNALS),
            "combination": self.how,
        }

    def save(self, path) -> None:
        """The arrays as safetensors (training features as float16), written atomically."""
        from safetensors.numpy import save_file

        from imagefit.data.atomic import write_with

        tensors = {
            "train_features": self.train_features.astype(np.float16),
            "valid_knn": self.valid_knn.astype(np.float32),
            "valid_msp": self.valid_msp.astype(np.float32),
        }
        write_with(path, lambda tmp: save_file(tensors, str(tmp)))

    @classmethod
    def load(cls, path, record: dict) -> Familiarity:
        """A run's familiarity from its file and the record in its config."""
        from safetensors.numpy import load_file

        arrays = load_file(str(path))
        return cls(
            arrays["train_features"].astype(np.float32),
            arrays["valid_knn"].astype(np.float64),
            arrays["valid_msp"].astype(np.float64),
            float(record["threshold"]),
            float(record.get("recall", DEFAULT_RECALL)),
            int(record.get("k", DEFAULT_K)),
            record.get("combination", DEFAULT_COMBINATION),
        )

    def unknown(self, scores: np.ndarray) -> np.ndarray:
        """Whether each familiarity is below the run's threshold."""
        return np.asarray(scores) < self.threshold

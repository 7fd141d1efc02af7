"""Mixup blends image pairs and their labels alike; label smoothing spreads targets; both repeat."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imagefit.train.engine.class_weights import training_loss
from imagefit.train.engine.mixing import MixedBatches
from imagefit.train.engine.trainer import count_correct, count_targets


def _batches(n_batches=3, n=6, classes=3):
    g = torch.Generator().manual_seed(0)
    return [(torch.rand(n, 3, 4, 4, generator=g), torch.arange(n) % classes) for _ in range(n_batches)]


def test_images_and_targets_are_blended_with_the_same_weight():
    plain = _batches()
    mixed = list(MixedBatches(plain, 3, alpha=0.4, seed=1))
    weights = []
    for (x, y), (xm, t) in zip(plain, mixed, strict=True):
        assert t.shape == (6, 3) and torch.allclose(t.sum(1), torch.ones(6))
        lam = float(t[0, y[0]]) if y[0] != y[-1] else None
        lam = float(t[0].max()) if lam is None else lam
        assert torch.allclose(xm, lam * x + (1 - lam) * x.flip(0), atol=1e-6)
        expected = lam * torch.eye(3)[y] + (1 - lam) * torch.eye(3)[y.flip(0)]
        assert torch.allclose(t, expected, atol=1e-6)
        weights.append(lam)
    assert len(set(np.round(weights, 6))) == 3  # a new blend each batch


def test_an_epoch_blends_the_same_way_whenever_it_is_run():
    plain = _batches()
    a, b = MixedBatches(plain, 3, 0.4, seed=5), MixedBatches(plain, 3, 0.4, seed=5)
    a.set_epoch(2)
    first = [t for _, t in a]
    list(b)  # another epoch before: the rng moved on, then set_epoch resets it
    b.set_epoch(2)
    assert all(torch.equal(p, q) for p, q in zip(first, [t for _, t in b], strict=True))
    b.set_epoch(3)
    assert not torch.equal(first[0], next(iter(b))[1])


def test_soft_targets_count_once_per_image_and_score_by_their_top_class():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    soft = torch.tensor([[0.7, 0.3], [0.4, 0.6], [0.2, 0.8]])
    assert count_targets(soft) == 3 and count_correct(logits, soft) == 2


@pytest.mark.parametrize("weights", ["none", "auto"])
def test_label_smoothing_spreads_the_target_over_the_classes(weights):
    torch.manual_seed(0)
    logits, y = torch.randn(5, 4), torch.tensor([0, 1, 1, 2, 3])
    loss = training_loss([0, 1, 1, 2, 3], 4, weights == "auto", label_smoothing=0.2)
    w = torch.ones(4) if weights == "none" else torch.tensor([1.25, 0.625, 1.25, 1.25])
    target = torch.eye(4)[y] * 0.8 + 0.05
    per_image = -(w * target * logits.log_softmax(1)).sum(1)
    expected = per_image.mean() if weights == "none" else per_image.sum() / w[y].sum()
    assert torch.allclose(loss(logits, y), expected, atol=1e-6)

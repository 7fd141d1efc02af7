"""fit_linear_head: the folded weights reproduce scikit-learn's standardised logistic regression exactly."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from imagefit.train.heads import C_GRID, C_LADDER, LinearHead, fit_linear_head, search_c

# features of very different scales and offsets, as CNN features are: the scaler must be folded in
_SCALES = np.array([1.0, 10.0, 0.1, 100.0, 3.0, 0.5])
_OFFSETS = np.array([0.0, -50.0, 2.0, 300.0, 1.0, -0.2])


def _blobs(n_classes: int, n_per_class: int, seed: int, spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs around centres 4 units apart per axis, then rescaled feature by feature."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(1000 + n_classes).normal(0, 4, (n_classes, len(_SCALES)))
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[y] + rng.normal(0, spread, (len(y), len(_SCALES)))
    return x * _SCALES + _OFFSETS, y


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(1, keepdims=True)


def _head_proba(head: LinearHead, x: np.ndarray) -> np.ndarray:
    return _softmax(x @ np.asarray(head.weight, np.float64).T + np.asarray(head.bias, np.float64))


def _reference(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> tuple[np.ndarray, np.ndarray, object]:
    mean, scale = x.mean(0), x.std(0) + 1e-6
    model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit((x - mean) / scale, y)
    return mean, scale, model


@pytest.mark.parametrize(("n_classes", "seed"), [(2, 0), (3, 1), (4, 2)])
def test_folded_head_equals_standardised_logistic_regression(n_classes: int, seed: int) -> None:
    x, y = _blobs(n_classes, 30, seed)
    head = fit_linear_head(x, y, n_classes, seed=seed, progress=False)
    assert head.weight.shape == (n_classes, x.shape[1])
    assert head.bias.shape == (n_classes,)
    mean, scale, model = _reference(x, y, head.C, seed)
    np.testing.assert_allclose(_head_proba(head, x), model.predict_proba((x - mean) / scale), atol=1e-5)
    # the folding holds off the training points too
    fresh, _ = _blobs(n_classes, 20, seed + 100, spread=3.0)
    np.testing.assert_allclose(
        _head_proba(head, fresh), model.predict_proba((fresh - mean) / scale), atol=1e-5
    )


@pytest.mark.parametrize("n_classes", [2, 3])
def test_accuracy_on_separable_blobs(n_classes: int) -> None:
    x, y = _blobs(n_classes, 40, seed=3)
    head = fit_linear_head(x, y, n_classes, seed=0, progress=False)
    assert (_head_proba(head, x).argmax(1) == y).mean() > 0.95
    x_test, y_test = _blobs(n_classes, 40, seed=4)
    assert (_head_proba(head, x_test).argmax(1) == y_test).mean() > 0.95


def test_c_is_chosen_from_the_grid_by_cv_loss() -> None:
    x, y = _blobs(3, 20, seed=5, spread=2.5)  # overlapping: the choice of C matters
    head = fit_linear_head(x, y, 3, seed=0, progress=False)
    assert head.C in C_LADDER
    assert set(C_GRID) <= set(head.cv_loss)
    assert all(np.isfinite(v) and v > 0 for v in head.cv_loss.values())
    best = min(head.cv_loss, key=head.cv_loss.get)
    assert best == head.C


def test_same_seed_same_head() -> None:
    x, y = _blobs(3, 20, seed=6, spread=2.0)
    a = fit_linear_head(x, y, 3, seed=4, progress=False)
    b = fit_linear_head(x, y, 3, seed=4, progress=False)
    np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(a.bias, b.bias)
    assert a.cv_loss == b.cv_loss


def test_binary_head_splits_the_logit_symmetrically() -> None:
    x, y = _blobs(2, 30, seed=7)
    head = fit_linear_head(x, y, 2, seed=0, progress=False)
    np.testing.assert_allclose(head.weight[0], -head.weight[1], rtol=1e-6)
    _, _, model = _reference(x, y, head.C, 0)
    assert model.coef_.shape == (1, x.shape[1])  # sklearn's single logit, split in two by the head


def _assert_never_predicted(head: LinearHead, x: np.ndarray, absent: int) -> None:
    assert head.bias[absent] < -1000
    np.testing.assert_array_equal(head.weight[absent], 0)
    proba = _head_proba(head, x)
    assert proba[:, absent].max() < 1e-12
    assert not np.any(proba.argmax(1) == absent)
    far, _ = _blobs(3, 10, seed=99, spread=50.0)  # even far from every training point
    assert not np.any(_head_proba(head, far).argmax(1) == absent)


def test_class_without_samples_last() -> None:
    x, y = _blobs(2, 20, seed=8)
    head = fit_linear_head(x, y, 3, seed=0, progress=False)
    assert head.weight.shape == (3, x.shape[1])
    _assert_never_predicted(head, x, absent=2)
    assert set(C_GRID) <= set(head.cv_loss)
    mean, scale, model = _reference(x, y, head.C, 0)
    np.testing.assert_allclose(
        _head_proba(head, x)[:, :2], model.predict_proba((x - mean) / scale), atol=1e-5
    )


def test_class_without_samples_in_the_middle() -> None:
    x, y = _blobs(2, 20, seed=9)
    y = np.where(y == 1, 2, 0)  # classes 0 and 2 present, class 1 empty
    head = fit_linear_head(x, y, 3, seed=0, progress=False)
    _assert_never_predicted(head, x, absent=1)
    assert (_head_proba(head, x).argmax(1) == y).mean() > 0.95
    # an empty class must not switch off the cross-validated choice of C (it does not when it is last)
    assert set(C_GRID) <= set(head.cv_loss)


def test_one_sample_class_falls_back_without_cv() -> None:
    x, y = _blobs(3, 10, seed=10)
    keep = np.r_[np.arange(20), 20]  # class 2 keeps a single sample
    head = fit_linear_head(x[keep], y[keep], 3, seed=0, progress=False)
    assert head.C in C_GRID
    assert head.cv_loss == {}
    assert (_head_proba(head, x[keep]).argmax(1) == y[keep]).mean() > 0.95


def test_search_walks_past_the_grid_while_the_best_c_is_on_an_edge() -> None:
    tried = []

    def loss(c: float) -> float:  # best at C = 10, beyond the first grid's upper edge
        tried.append(c)
        return (np.log10(c) - 1.0) ** 2

    losses = search_c(loss)
    assert min(losses, key=losses.get) == 10.0
    assert sorted(losses) == [*C_GRID, 3.0, 10.0, 30.0]  # one step past the best, then stop
    assert len(tried) == len(set(tried))


@pytest.mark.parametrize(("slope", "end"), [(1.0, C_LADDER[-1]), (-1.0, C_LADDER[0])])
def test_search_stops_at_the_ladder_ends(slope: float, end: float) -> None:
    losses = search_c(lambda c: -slope * np.log10(c))  # always better further out
    assert min(losses, key=losses.get) == end
    assert sorted(losses)[0 if slope < 0 else -1] == end
    assert len(losses) == len(C_GRID) + 6


def test_noise_labels_choose_a_c_below_the_old_grid() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 6)), np.repeat([0, 1], 30)  # labels unrelated to the features
    head = fit_linear_head(x, y, 2, seed=0, progress=False)
    assert min(C_GRID) > head.C
    assert head.summary()["C_grid"] == sorted(head.cv_loss)
    assert head.summary()["C_grid"][0] < min(C_GRID)


def test_the_heads_out_of_fold_probabilities_count_planted_label_errors() -> None:
    from imagefit.train.heads import label_issue_count

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = rng.normal(0, 1, (120, 8)) + 4 * np.eye(3, 8)[y]  # three well separated clusters
    noisy = y.copy()
    noisy[[0, 41, 82, 5, 46]] = [1, 2, 0, 2, 0]  # five images filed under another class
    head = fit_linear_head(x, noisy, 3, seed=0, progress=False)
    assert head.oof.shape == (120, 3)
    assert np.allclose(head.oof.sum(1), 1)
    assert label_issue_count(head.oof, noisy) >= 4
    clean = fit_linear_head(x, y, 3, seed=0, progress=False)
    assert label_issue_count(clean.oof, y) <= 1

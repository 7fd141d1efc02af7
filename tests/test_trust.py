"""Calibration and familiarity: temperatures found, argmax kept, unknown images told apart, saved and read."""

import numpy as np
import pytest
import torch

from imagefit.inference.calibration import (
    Calibration,
    expected_calibration_error,
    fit_label_scaling,
    fit_temperature,
)
from imagefit.inference.classifier import Classifier
from imagefit.inference.familiarity import Familiarity, conformal_threshold, energy, p_values
from imagefit.inference.predictions import Predictions
from imagefit.inference.trust import fold_calibration


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def sampled(n=6000, classes=4, seed=0):
    """Logits whose softmax is the true probability of the labels drawn from it."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.0, (n, classes))
    y = np.array([rng.choice(classes, p=p) for p in softmax(z)])
    return z, y


def test_temperature_undoes_overconfidence():
    z, y = sampled()
    found = fit_temperature(z * 3.0, y)  # three times too confident
    assert found.temperature == pytest.approx(3.0, rel=0.1)
    calibrated = softmax(found.apply(z * 3.0))
    assert (calibrated.argmax(1) == (z * 3.0).argmax(1)).all()
    before = expected_calibration_error(softmax(z * 3.0), y)
    after = expected_calibration_error(calibrated, y)
    assert before > 0.1 and after < 0.03


def test_a_separable_validation_set_never_sharpens():
    z = np.array([[3.0, 0.0], [0.0, 2.0], [4.0, 1.0]])
    assert fit_temperature(z, np.array([0, 1, 0])).temperature >= 1.0


def test_ece_of_a_calibrated_model_is_small_and_of_a_wrong_one_large():
    z, y = sampled(seed=1)
    assert expected_calibration_error(softmax(z), y) < 0.03
    guess = (z.argmax(1) + 1) % 4
    always_sure = np.eye(4)[guess]  # certain, and right only by chance
    assert expected_calibration_error(always_sure, y) == pytest.approx(1.0 - (guess == y).mean())


def test_label_scaling_fits_each_label_and_keeps_its_order():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, (4000, 3))
    targets = (rng.random(z.shape) < 1 / (1 + np.exp(-(0.5 * z + np.array([0.0, 1.0, -1.0]))))).astype(int)
    found = fit_label_scaling(z, targets)
    assert found.scales == pytest.approx([0.5, 0.5, 0.5], abs=0.1)
    assert found.shifts == pytest.approx([0.0, 1.0, -1.0], abs=0.15)
    out = found.apply(z)
    assert (np.argsort(out[:, 0]) == np.argsort(z[:, 0])).all()


def test_calibration_record_round_trip_and_old_runs():
    cal = Calibration(temperature=1.7)
    assert Calibration.from_dict(cal.to_dict()) == cal
    assert Calibration.from_dict({}) is None


class TinyNet(torch.nn.Module):
    def __init__(self, classes=3, dim=5):
        super().__init__()
        self.fc = torch.nn.Linear(dim, classes)
        self.num_classes = classes

    def get_classifier(self):
        return self.fc

    def forward(self, x):
        return self.fc(x)


def test_folded_temperature_is_softmax_of_logits_over_t_and_keeps_argmax():
    torch.manual_seed(0)
    classifier = Classifier(TinyNet(), ["a", "b", "c"], {"input_size": (3, 8, 8)}, {})
    feats = np.random.default_rng(0).normal(size=(50, 5)).astype(np.float32)
    logits = classifier.logits(feats)
    fold_calibration(classifier, Calibration(temperature=2.5))
    assert classifier.probabilities(feats) == pytest.approx(softmax(logits / 2.5), abs=1e-5)
    assert (classifier.probabilities(feats).argmax(1) == logits.argmax(1)).all()


def test_folded_label_scaling_moves_thresholds_with_the_probabilities():
    net = TinyNet()
    classifier = Classifier(net, ["a", "b", "c"], {"input_size": (3, 8, 8)}, {}, thresholds=[0.3, 0.5, 0.7])
    feats = np.random.default_rng(1).normal(size=(200, 5)).astype(np.float32)
    decided = classifier.probabilities(feats) >= classifier.thresholds
    fold_calibration(classifier, Calibration(scales=[0.5, 2.0, 1.0], shifts=[1.0, -0.5, 0.2]))
    assert ((classifier.probabilities(feats) >= classifier.thresholds) == decided).mean() > 0.99
    assert classifier.thresholds[1] != pytest.approx(0.5)


def clusters(seed=0):
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=64)
    far_centre = rng.normal(size=64)

    def around(c, n):
        return (c + 0.3 * rng.normal(size=(n, 64))).astype(np.float32)

    return around(centre, 300), around(centre, 200), around(far_centre, 100)


def test_familiarity_calls_far_images_unknown_and_keeps_the_recall_on_known_ones():
    train, valid, far = clusters()
    rng = np.random.default_rng(3)
    probs_valid = softmax(rng.normal(0, 3, (len(valid), 3)))
    probs_far = softmax(rng.normal(0, 3, (len(far), 3)))  # as confident as the known images
    fam = Familiarity.fit(train, valid, probs_valid, recall=0.95)
    assert fam.unknown(fam.scores(valid, probs_valid)).mean() == pytest.approx(0.05, abs=0.02)
    assert fam.unknown(fam.scores(far, probs_far)).mean() > 0.95


def test_familiarity_saved_and_loaded_gives_the_same_scores(tmp_path):
    train, valid, far = clusters(1)
    probs = softmax(np.random.default_rng(4).normal(size=(len(valid), 3)))
    fam = Familiarity.fit(train, valid, probs)
    fam.save(tmp_path / "f.safetensors")
    again = Familiarity.load(tmp_path / "f.safetensors", fam.record())
    assert again.threshold == fam.threshold
    assert again.scores(far, probs[:100]) == pytest.approx(fam.scores(far, probs[:100]), abs=1e-3)


def test_p_values_and_energy():
    assert list(p_values(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 2.0, 5.0]))) == [0.2, 0.6, 1.0]
    assert energy(np.array([[0.0, 0.0]]))[0] == pytest.approx(np.log(2))


def test_predictions_write_familiarity_and_reject_unknown(tmp_path):
    probs = np.array([[0.9, 0.1], [0.2, 0.8]], np.float32)
    preds = Predictions(["cat", "dog"], ["a.jpg", "b.jpg"], probs)
    preds.familiarity, preds.unknown = np.array([0.6, 0.01]), np.array([False, True])
    assert preds.labels == ["cat", "dog"]
    rejecting = preds.rejecting()
    assert rejecting.labels == ["cat", "unknown"]
    rejecting.to_csv(tmp_path / "p.csv")
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "path,class,probability,familiarity,unknown,p_cat,p_dog"
    assert lines[2].startswith("b.jpg,unknown,0.800000,0.010000,1,")


def test_the_threshold_keeps_the_recall_and_too_few_images_call_nothing_unknown():
    known = np.arange(1, 101) / 100.0  # 100 known scores 0.01 ... 1.00
    assert conformal_threshold(known, 0.95) == pytest.approx(0.05)  # k = floor(101 * 0.05) = 5
    assert conformal_threshold(known[:10], 0.95) == 0.0  # 10 images cannot support 95 %
    assert conformal_threshold(known[:19], 0.95) == pytest.approx(0.01)


def test_with_max_an_image_is_unknown_only_when_both_signals_are_low():
    train, valid, far = clusters(2)
    rng = np.random.default_rng(5)
    probs_valid = softmax(rng.normal(0, 3, (len(valid), 3)))
    fam = Familiarity.fit(train, valid, probs_valid, how="max")
    sure = np.tile([0.98, 0.01, 0.01], (len(far), 1))  # far features, a confident label
    unsure = np.full((len(far), 3), 1 / 3)  # far features, no label near
    assert not fam.unknown(fam.scores(far, sure)).any()
    assert fam.unknown(fam.scores(far, unsure)).all()

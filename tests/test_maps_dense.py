"""Dense maps: the fully convolutional network equals the patch-by-patch reference, and windows stitch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imagefit.errors import ModelError
from imagefit.maps.inputs.rasters import raster_info
from imagefit.maps.mapping.defaults import DEFAULT_WINDOW
from imagefit.maps.mapping.dense_networks import dense_model
from imagefit.maps.mapping.region import iter_logits, map_region, region_of
from imagefit.maps.mapping.window_engines import NaiveEngine, OnnxDenseEngine, TorchDenseEngine
from imagefit.maps.outputs.theme_map import NODATA
from imagefit.models.small_cnn import SmallCNN
from tests._tiles import make_tiles
from tests.conftest import SHARED_DATA

HALF = (0.5, 0.5, 0.5)


def logits_of_region(engine, path, patch, mean, std, roi=None, window=DEFAULT_WINDOW) -> np.ndarray:
    """The logits (classes, rows - P + 1, cols - P + 1) of every patch inside a raster or ROI, stitched."""
    region = region_of(raster_info(path), roi, patch)
    blocks = list(iter_logits(engine, path, region, patch, mean, std, window, pad=False))
    out = np.zeros((len(blocks[0][2]), region.height - patch + 1, region.width - patch + 1), np.float32)
    for r0, c0, logits in blocks:
        out[:, r0 : r0 + logits.shape[1], c0 : c0 + logits.shape[2]] = logits
    return out


def _naive_logits(model, x, patch):
    patches = x.unfold(2, patch, 1).unfold(3, patch, 1)[0].permute(1, 2, 0, 3, 4).reshape(-1, 3, patch, patch)
    rows, cols = x.shape[2] - patch + 1, x.shape[3] - patch + 1
    with torch.inference_mode():
        return model(patches).reshape(rows, cols, -1).permute(2, 0, 1)


@pytest.mark.parametrize(
    ("spec", "patch"),
    [
        ("larger_model", 28),
        ("larger_model", 31),  # pooling floors leave the patch's last pixels unread
        ("conv8@3s2-bn-conv6@3-avgpool2-dense16-bn-drop0.3", 24),
        ("simple_model", 20),
        ("baseline_model", 9),
    ],
)
def test_the_dense_network_gives_every_patch_the_logits_of_the_patch_alone(spec, patch):
    torch.manual_seed(0)
    model = SmallCNN(spec, 3, 5, patch).eval()
    for m in model.modules():  # give BatchNorm statistics that matter
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(1, 3, patch + 23, patch + 17)
    with torch.inference_mode():
        dense = dense_model(model, patch)(x)[0]
    naive = _naive_logits(model, x, patch)
    assert dense.shape == naive.shape == (5, 24, 18)
    assert torch.allclose(dense, naive, atol=1e-4)


def test_same_padding_cannot_be_made_dense():
    with pytest.raises(ModelError, match="'same' padding cannot be mapped densely: use --naive"):
        dense_model(SmallCNN("conv8@3same-pool2-dense8", 3, 2, 16), 16)


@pytest.fixture(scope="module")
def tile(tmp_path_factory):
    return make_tiles(tmp_path_factory.mktemp("tiles"), refs=("A1",), size=(90, 110)) / "3band" / "A1.png"


def test_four_or_more_windows_stitch_into_the_map_of_one_window(tile):
    torch.manual_seed(1)
    model = SmallCNN("larger_model", 3, 3, 28).eval()
    engine = TorchDenseEngine(model, 28)
    whole = logits_of_region(engine, tile, 28, HALF, HALF, window=400)
    pieces = logits_of_region(engine, tile, 28, HALF, HALF, window=28 + 24)  # blocks of 25 positions
    assert whole.shape == (3, 63, 83)
    assert np.allclose(whole, pieces, atol=1e-5)
    one, many = (map_region(engine, tile, 28, HALF, HALF, window=w) for w in (400, 52))
    assert one.windows == 1 and many.windows == 4 * 5  # every pixel a position: 90 x 110
    assert np.array_equal(one.index, many.index)


def test_onnx_torch_and_naive_engines_agree_and_every_pixel_is_mapped(tile):
    torch.manual_seed(2)
    model = SmallCNN("larger_model", 3, 3, 28).eval()
    maps = [
        map_region(engine, tile, 28, HALF, HALF, window=60)
        for engine in (NaiveEngine(model, 28), TorchDenseEngine(model, 28), OnnxDenseEngine(model, 28))
    ]
    assert np.array_equal(maps[0].index, maps[1].index) and np.array_equal(maps[0].index, maps[2].index)
    index = maps[0].index
    assert index.shape == (90, 110) and (index != NODATA).all()  # the border too, from reflected patches
    inside = logits_of_region(TorchDenseEngine(model, 28), tile, 28, HALF, HALF).argmax(0)
    assert np.array_equal(index[14:-13, 14:-13], inside)  # where a whole patch fits: its own class


def test_border_patches_are_the_image_reflected_at_its_edge(tile):
    from imagefit.maps.inputs.rasters import read_image
    from imagefit.maps.mapping.region import WindowReader

    read = WindowReader(tile, raster_info(tile), (0, 0, 0), (1 / 255, 1 / 255, 1 / 255))
    pixels, _ = read_image(tile)
    x = read(-3, -2, 10, 12)[0].transpose(1, 2, 0)  # 3 rows above, 2 columns left of the image
    assert np.array_equal(x[3:, 2:], pixels[:7, :10])
    assert np.array_equal(x[:3, 2:], pixels[3:0:-1, :10]) and np.array_equal(x[3:, :2], pixels[:7, 2:0:-1])
    assert np.array_equal(read(85, 100, 5, 10)[0].transpose(1, 2, 0), pixels[85:90, 100:110])


@pytest.mark.realdata
def test_dense_equals_naive_on_a_300x300_region_of_a_real_tile(tmp_path):
    tiles = SHARED_DATA / "aerial-tiles"
    if not (tiles / "3band" / "T1P03.jpg").is_file():
        pytest.skip(f"real aerial tiles not found at {tiles}")
    from imagefit.maps.training.map_train import train_map

    options = {"epochs": 1, "steps": 30, "batch_size": 64, "valid_patches": 128, "progress": False}
    run = train_map(tiles, ["T1P01"], "T1P03", out=tmp_path / "run", ignore=0, balance=True, **options)
    model = run.classifier.model  # trained a little, so that classes are decided by real margins
    roi = ((200, 100), (500, 400))
    image = tiles / "3band" / "T1P03.jpg"
    naive = logits_of_region(NaiveEngine(model, 28, batch_size=4096), image, 28, HALF, HALF, roi, window=300)
    for engine in (TorchDenseEngine(model, 28), OnnxDenseEngine(model, 28)):
        dense = logits_of_region(engine, image, 28, HALF, HALF, roi, window=300)
        assert dense.shape == naive.shape == (6, 273, 273)
        assert np.abs(dense - naive).max() < 1e-4
        assert np.array_equal(dense.argmax(0), naive.argmax(0))  # every pixel's class
    assert len(np.unique(naive.argmax(0))) >= 2  # the classes vary across the region


def test_a_backbone_maps_densely_and_one_patch_gets_the_backbones_own_logits():
    import timm

    from imagefit.maps.mapping.dense_networks import DenseBackbone
    from imagefit.models.dense_skips import add_dense_skips

    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet", num_classes=4).eval()
    net = DenseBackbone(model, 32)
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        assert torch.allclose(net(x)[0, :, 0, 0], model(x)[0], atol=1e-4)  # a lone patch: exactly it
        out = net(torch.randn(1, 3, 150, 170))
        plain = net(x)
    assert out.shape == (1, 4, 119, 139) and torch.isfinite(out).all()
    add_dense_skips(model)  # zero at first: the same map
    with torch.no_grad():
        assert torch.allclose(DenseBackbone(model, 32)(x), plain, atol=1e-6)
        for conv in model.dense_skips.values():
            conv.bias.fill_(0.25)
        shifted = DenseBackbone(model, 32)(x)  # two skips, each adding 0.25 to every class score
    assert torch.allclose(shifted, plain + 0.5, atol=1e-5)
    with pytest.raises(ModelError, match="patch 50 must be a multiple of 32"):
        DenseBackbone(model, 50)


def test_a_backbone_map_run_saves_and_loads_its_skip_layers(tmp_path):
    from imagefit.maps.mapping.tile import load_map_run
    from imagefit.maps.training.map_train import train_map
    from tests._tiles import make_tiles

    tiles = make_tiles(tmp_path / "tiles", refs=("A1", "B1"), size=(70, 90))
    options = {"model": "test_efficientnet", "weights": "none", "epochs": 1, "steps": 2, "crop": 64}
    run = train_map(tiles, ["A1"], "B1", out=tmp_path / "run", progress=False, valid_patches=128, **options)
    trained = run.classifier.model
    assert run.metrics["best"]["monitor"] == "val_acc"  # backbones keep the most accurate epoch
    assert any(conv.weight.abs().sum() > 0 for conv in trained.dense_skips.values())  # they trained
    loaded = load_map_run(run.run_dir).model
    x = torch.randn(1, 3, 96, 96)
    with torch.inference_mode():
        assert torch.allclose(_dense(loaded)(x), _dense(trained)(x), atol=1e-5)


def _dense(model):
    """A backbone's dense network at the default backbone patch."""
    from imagefit.maps.mapping.dense_networks import DenseBackbone

    return DenseBackbone(model.eval(), 32)

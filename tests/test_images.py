"""open_image and list_images: every pixel format comes back upright RGB; bad files name themselves."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagefit.data.images import ImageReadError, list_images, open_image

_ORIENTATION = 0x0112


def _save(img: Image.Image, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kwargs)
    return path


def _gradient(width: int, height: int) -> Image.Image:
    """A smooth RGB picture: compresses small and decodes without surprises."""
    x = np.linspace(0, 255, width)[None, :, None]
    y = np.linspace(0, 255, height)[:, None, None]
    pixels = np.concatenate(
        [np.broadcast_to(x, (height, width, 1)), np.broadcast_to(y, (height, width, 1))], 2
    )
    pixels = np.concatenate([pixels, np.full((height, width, 1), 128.0)], 2)
    return Image.fromarray(pixels.astype(np.uint8))


def _halves(width: int, height: int, left=(255, 0, 0), right=(0, 0, 255)) -> Image.Image:
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = left
    pixels[:, width // 2 :] = right
    return Image.fromarray(pixels)


def _close(pixel: tuple[int, ...], expected: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, expected, strict=True))


# --- pixel formats ----------------------------------------------------------------------------


def test_rgb_png_is_returned_exactly(tmp_path: Path) -> None:
    src = _gradient(33, 21)
    img = open_image(_save(src, tmp_path / "rgb.png"))
    assert img.mode == "RGB" and img.size == (33, 21)
    assert np.array_equal(np.asarray(img), np.asarray(src))


def test_grayscale_becomes_rgb_with_equal_channels(tmp_path: Path) -> None:
    grey = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (7, 1))
    img = open_image(_save(Image.fromarray(grey, mode="L"), tmp_path / "grey.png"))
    assert img.mode == "RGB" and img.size == (25, 7)
    arr = np.asarray(img)
    for channel in range(3):
        assert np.array_equal(arr[..., channel], grey)


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    pixels = np.zeros((6, 8, 4), np.uint8)
    pixels[..., :3] = (10, 20, 200)
    pixels[..., 3] = 255
    pixels[0, 0] = (0, 0, 0, 0)  # fully transparent black
    pixels[1, 1] = (0, 0, 0, 128)  # half transparent black
    img = open_image(_save(Image.fromarray(pixels, mode="RGBA"), tmp_path / "rgba.png"))
    assert img.mode == "RGB" and img.size == (8, 6)
    assert img.getpixel((0, 0)) == (255, 255, 255)
    assert _close(img.getpixel((1, 1)), (127, 127, 127), tol=2)
    assert img.getpixel((5, 4)) == (10, 20, 200)


def test_grey_with_alpha_is_composited_on_white(tmp_path: Path) -> None:
    la = Image.new("LA", (5, 4), (40, 255))
    la.putpixel((2, 2), (40, 0))
    img = open_image(_save(la, tmp_path / "la.png"))
    assert img.mode == "RGB" and img.size == (5, 4)
    assert img.getpixel((2, 2)) == (255, 255, 255)
    assert img.getpixel((0, 0)) == (40, 40, 40)


def test_palette_image_maps_to_its_colours(tmp_path: Path) -> None:
    pal = Image.new("P", (9, 5), 0)
    pal.putpalette([200, 10, 10, 10, 200, 10] + [0] * (254 * 3))
    pal.putpixel((4, 2), 1)
    img = open_image(_save(pal, tmp_path / "pal.png"))
    assert img.mode == "RGB" and img.size == (9, 5)
    assert img.getpixel((0, 0)) == (200, 10, 10)
    assert img.getpixel((4, 2)) == (10, 200, 10)


def test_palette_transparency_becomes_white(tmp_path: Path) -> None:
    pal = Image.new("P", (6, 6), 0)
    pal.putpalette([0, 0, 0, 10, 200, 10] + [0] * (254 * 3))
    pal.putpixel((3, 3), 1)
    img = open_image(_save(pal, tmp_path / "pal_t.png", transparency=0))
    assert img.mode == "RGB" and img.size == (6, 6)
    assert img.getpixel((0, 0)) == (255, 255, 255)
    assert img.getpixel((3, 3)) == (10, 200, 10)


def test_16bit_grayscale_png_is_scaled_to_8bit(tmp_path: Path) -> None:
    values = (np.arange(11 * 7).reshape(7, 11) * 800).astype(np.uint16)  # 0 .. 60800
    src = Image.fromarray(values)
    assert src.mode == "I;16"
    img = open_image(_save(src, tmp_path / "deep.png"))
    assert img.mode == "RGB" and img.size == (11, 7)
    arr = np.asarray(img).astype(int)
    assert arr[0, 0].tolist() == [0, 0, 0]
    assert arr[-1, -1].tolist() == [255, 255, 255]
    flat = arr[..., 0].ravel()
    assert np.all(np.diff(flat) >= 0)  # order of intensities kept
    assert len(np.unique(flat)) > 50  # not crushed to a few levels


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (30, 20), (0, 255, 255, 0))  # pure red in CMYK
    path = _save(cmyk, tmp_path / "cmyk.jpg", quality=95)
    with Image.open(path) as raw:
        assert raw.mode == "CMYK"
    img = open_image(path)
    assert img.mode == "RGB" and img.size == (30, 20)
    assert _close(img.getpixel((15, 10)), (255, 0, 0))


def test_exif_orientation_6_is_applied(tmp_path: Path) -> None:
    src = _halves(40, 20)  # red left, blue right
    exif = Image.Exif()
    exif[_ORIENTATION] = 6
    path = _save(src, tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    img = open_image(path)
    assert img.mode == "RGB"
    assert img.size == (20, 40)
    # orientation 6 is shown turned 90 degrees clockwise: the stored left side ends on top
    assert _close(img.getpixel((10, 2)), (255, 0, 0), tol=30)
    assert _close(img.getpixel((10, 37)), (0, 0, 255), tol=30)


# --- draft decoding ---------------------------------------------------------------------------


def test_draft_decodes_large_jpeg_smaller_but_not_below_min_size(tmp_path: Path) -> None:
    path = _save(_gradient(1600, 1200), tmp_path / "big.jpg", quality=90)
    assert open_image(path).size == (1600, 1200)
    small = open_image(path, min_size=200)
    assert small.mode == "RGB"
    assert 200 <= min(small.size) < 1200
    assert small.size[0] / small.size[1] == pytest.approx(1600 / 1200, rel=0.01)
    # the reduced decode is still the same picture
    reference = np.asarray(open_image(path).resize(small.size, Image.BILINEAR), dtype=float)
    assert np.abs(np.asarray(small, dtype=float) - reference).mean() < 6


@pytest.mark.parametrize("min_size", [150, 224, 299, 400, 599])
def test_draft_never_goes_below_min_size(tmp_path: Path, min_size: int) -> None:
    path = _save(_gradient(1000, 700), tmp_path / "mid.jpg")
    img = open_image(path, min_size=min_size)
    assert min(img.size) >= min_size
    assert min(img.size) <= 700


def test_draft_with_exif_rotation(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[_ORIENTATION] = 6
    path = _save(_halves(1200, 800), tmp_path / "big_rot.jpg", exif=exif.tobytes())
    img = open_image(path, min_size=180)
    width, height = img.size
    assert height > width  # rotated
    assert 180 <= width < 800


@pytest.mark.parametrize(
    ("mode", "colour", "expected"),
    [("L", 90, (90, 90, 90)), ("CMYK", (0, 255, 255, 0), (255, 0, 0))],
)
def test_draft_of_grey_and_cmyk_jpeg(tmp_path: Path, mode: str, colour, expected) -> None:
    path = _save(Image.new(mode, (1000, 700), colour), tmp_path / f"{mode}.jpg", quality=95)
    img = open_image(path, min_size=200)
    assert img.mode == "RGB"
    assert 200 <= min(img.size) < 700
    assert _close(img.getpixel((img.size[0] // 2, img.size[1] // 2)), expected)


def test_min_size_leaves_png_alone(tmp_path: Path) -> None:
    path = _save(_gradient(800, 600), tmp_path / "big.png")
    assert open_image(path, min_size=100).size == (800, 600)


# --- unreadable files -------------------------------------------------------------------------


def _assert_read_error(path: Path) -> ImageReadError:
    with pytest.raises(ImageReadError) as err:
        open_image(path)
    assert str(path) in str(err.value)
    return err.value


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    _assert_read_error(path)


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n" * 20)
    error = _assert_read_error(path)
    assert "not an image" in str(error)


def test_truncated_jpeg(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(buffer, "JPEG")
    data = buffer.getvalue()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    _assert_read_error(path)
    with pytest.raises(ImageReadError):
        open_image(path, min_size=32)


def test_missing_file(tmp_path: Path) -> None:
    _assert_read_error(tmp_path / "gone.png")


def test_decompression_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(_gradient(40, 40), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 pixels > 2 x limit
    _assert_read_error(path)


# --- list_images ------------------------------------------------------------------------------


def test_list_images_recursive_sorted_and_filtered(tmp_path: Path) -> None:
    keep = [
        tmp_path / "b.png",
        tmp_path / "a" / "z.JPG",
        tmp_path / "a" / "deep" / "x.jpeg",
        tmp_path / "c" / "photo.webp",
        tmp_path / "c" / "scan.tif",
        tmp_path / "c" / "été.png",
    ]
    for path in keep:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    skip = [
        tmp_path / ".hidden.png",
        tmp_path / "a" / ".DS_Store",
        tmp_path / ".git" / "x.png",
        tmp_path / "a" / ".thumbs" / "y.jpg",
        tmp_path / "notes.txt",
        tmp_path / "c" / "labels.csv",
        tmp_path / "c" / "jpg",
    ]
    for path in skip:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    found = list_images(tmp_path)
    assert found == sorted(keep)


def test_list_images_of_a_file_is_that_file(tmp_path: Path) -> None:
    path = _save(_gradient(4, 4), tmp_path / "one.png")
    assert list_images(path) == [path]


def test_list_images_of_empty_folder(tmp_path: Path) -> None:
    assert list_images(tmp_path) == []


# --- hardening: backgrounds, odd TIFFs, pixel limit, kinds, links ------------------------------


def _half_transparent(tmp_path: Path) -> Path:
    pixels = np.zeros((4, 6, 4), np.uint8)
    pixels[..., :3] = (10, 20, 200)
    pixels[..., 3] = 255
    pixels[0, 0] = (0, 0, 0, 0)
    return _save(Image.fromarray(pixels, mode="RGBA"), tmp_path / "t.png")


def test_rgba_on_black_by_argument_and_by_environment(tmp_path: Path, monkeypatch) -> None:
    path = _half_transparent(tmp_path)
    assert open_image(path, background="black").getpixel((0, 0)) == (0, 0, 0)
    assert open_image(path).getpixel((0, 0)) == (255, 255, 255)
    monkeypatch.setenv("IMAGEFIT_BACKGROUND", "black")
    assert open_image(path).getpixel((0, 0)) == (0, 0, 0)
    assert open_image(path).getpixel((3, 2)) == (10, 20, 200)  # opaque pixels untouched


def test_unknown_background_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="white or black"):
        open_image(_half_transparent(tmp_path), background="pink")


def test_float_tiff_is_scaled_from_its_range(tmp_path: Path) -> None:
    values = np.linspace(-2.0, 6.0, 8 * 5, dtype=np.float32).reshape(5, 8)
    path = _save(Image.fromarray(values, mode="F"), tmp_path / "f.tif")
    arr = np.asarray(open_image(path))
    assert arr.shape == (5, 8, 3)
    assert arr[0, 0].tolist() == [0, 0, 0] and arr[-1, -1].tolist() == [255, 255, 255]
    assert arr[2, 4, 0] == round((values[2, 4] + 2) / 8 * 255)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_rgb_tiff_pillow_cannot_read_comes_through_tifffile(tmp_path: Path, dtype) -> None:
    import tifffile

    rgb = np.zeros((6, 9, 3), dtype)
    rgb[..., 0] = 1.0  # red where Pillow sees nothing it can decode
    rgb[0, 0] = (0.0, 0.0, 1.0)
    tifffile.imwrite(tmp_path / "f.tif", rgb, photometric="rgb")
    with pytest.raises(Exception):  # noqa: B017 - Pillow alone refuses this file
        Image.open(tmp_path / "f.tif").load()
    img = open_image(tmp_path / "f.tif")
    assert img.mode == "RGB" and img.size == (9, 6)
    assert img.getpixel((5, 3)) == (255, 0, 0)
    assert img.getpixel((0, 0)) == (0, 0, 255)


def test_float_with_nan_and_infinity(tmp_path: Path) -> None:
    import tifffile

    values = np.array([[np.nan, 0.0, 1.0, np.inf]], np.float64)
    tifffile.imwrite(tmp_path / "nan.tif", values)
    assert np.asarray(open_image(tmp_path / "nan.tif"))[0, :, 0].tolist() == [0, 0, 255, 0]


def test_16bit_rgb_tiff_keeps_the_high_byte(tmp_path: Path) -> None:
    import tifffile

    rgb = np.full((4, 4, 3), (65535, 32896, 0), np.uint16)
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb, photometric="rgb")
    assert open_image(tmp_path / "rgb16.tif").getpixel((1, 1)) == (255, 128, 0)


def test_cmyk_tiff_becomes_rgb(tmp_path: Path) -> None:
    path = _save(Image.new("CMYK", (5, 5), (0, 255, 255, 0)), tmp_path / "c.tif")
    assert open_image(path).getpixel((2, 2)) == (255, 0, 0)


def test_pixel_limit_names_the_size_and_the_way_out(tmp_path: Path, monkeypatch) -> None:
    path = _save(_gradient(300, 200), tmp_path / "big.png")
    monkeypatch.setenv("IMAGEFIT_MAX_PIXELS", "50000")
    with pytest.raises(ImageReadError) as err:
        open_image(path)
    assert err.value.kind == "too-large"
    assert "300 x 200 = 60,000 pixels" in str(err.value) and "IMAGEFIT_MAX_PIXELS" in str(err.value)
    monkeypatch.setenv("IMAGEFIT_MAX_PIXELS", "60000")
    assert open_image(path).size == (300, 200)


def test_pixel_limit_applies_to_the_draft_size_of_a_jpeg(tmp_path: Path, monkeypatch) -> None:
    path = _save(_gradient(1600, 1200), tmp_path / "big.jpg")
    monkeypatch.setenv("IMAGEFIT_MAX_PIXELS", "500000")
    with pytest.raises(ImageReadError, match="pixels is more than"):
        open_image(path)
    assert max(open_image(path, min_size=224).size) <= 800  # decoded small: under the limit


def test_real_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    path = _save(Image.new("1", (10_000, 10_000)), tmp_path / "bomb.png")
    assert path.stat().st_size < 100_000
    with pytest.raises(ImageReadError) as err:
        open_image(path)
    assert err.value.kind == "too-large" and "100,000,000 pixels" in str(err.value)


def test_float_tiff_over_the_limit_is_refused_before_reading(tmp_path: Path, monkeypatch) -> None:
    import tifffile

    tifffile.imwrite(tmp_path / "f.tif", np.zeros((100, 100, 3), np.float32), photometric="rgb")
    monkeypatch.setenv("IMAGEFIT_MAX_PIXELS", "5000")
    with pytest.raises(ImageReadError) as err:
        open_image(tmp_path / "f.tif")
    assert err.value.kind == "too-large"


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("not a picture " * 50), "not-image"),
        (lambda p: None, "unreadable"),
    ],
)
def test_read_errors_say_their_kind(tmp_path: Path, make, kind: str) -> None:
    path = tmp_path / "x.jpg"
    make(path)
    with pytest.raises(ImageReadError) as err:
        open_image(path)
    assert err.value.kind == kind and str(path) in str(err.value)


def test_truncated_files_say_truncated(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    _gradient(64, 64).save(buffer, "PNG")
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[:-40])
    with pytest.raises(ImageReadError) as err:
        open_image(tmp_path / "cut.png")
    assert err.value.kind == "truncated" and "copy it again" in str(err.value)


def test_symlink_loops_are_errors_not_hangs(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").symlink_to(tmp_path / "b.jpg")
    (tmp_path / "b.jpg").symlink_to(tmp_path / "a.jpg")
    with pytest.raises(ImageReadError) as err:
        open_image(tmp_path / "a.jpg")
    assert err.value.kind == "unreadable"


def test_list_images_follows_folder_links_once_and_ends_on_loops(tmp_path: Path) -> None:
    elsewhere = _save(_gradient(4, 4), tmp_path / "elsewhere" / "far.png")
    root = tmp_path / "root"
    near = _save(_gradient(4, 4), root / "near.png")
    (root / "linked").symlink_to(elsewhere.parent)
    (root / "loop").symlink_to(root)  # back to the top
    (root / "linked" / "up").symlink_to(root)  # a longer loop through the linked folder
    found = list_images(root)
    assert found == [root / "linked" / "far.png", near]


def test_unicode_and_space_paths_open(tmp_path: Path) -> None:
    path = _save(_gradient(7, 5), tmp_path / "dossier été" / "猫 photo 01.png")
    assert list_images(tmp_path) == [path]
    assert open_image(path).size == (7, 5)

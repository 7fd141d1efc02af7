"""Training transforms: timm's pipeline from a model's data config, plus the options users ask for.

`Augment` lists them (crop scale, flips, rotation, shear, colour jitter, blur) and parses the
compact spec of `--aug`, e.g. `rotate=15,shear=10,vflip=0.5,blur=0.2,scale=0.6-1`. timm builds
the crop, flips and jitter from the data config; torchvision's RandomAffine and GaussianBlur are
placed between them and the final tensor conversion, so the geometry is applied to the picture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from timm.data import create_transform
from torchvision import transforms

from imagefit.data.channels import match_channels
from imagefit.data.transforms import eval_transform
from imagefit.errors import OptionError


@dataclass(frozen=True)
class Augment:
    """Random training transforms; a 0 switches one off. Mild by default: objects are kept whole."""

    scale: tuple[float, float] = (0.75, 1.0)  # share of the image area a random crop keeps
    hflip: float = 0.5  # probability of a left-right flip
    vflip: float = 0.0  # probability of an upside-down flip (aerial and microscope images)
    rotate: float = 0.0  # degrees, up to this either way
    shear: float = 0.0  # degrees, up to this either way
    jitter: float = 0.2  # brightness, contrast and saturation change, up to this share
    blur: float = 0.0  # probability of a Gaussian blur

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if not 0 < lo <= hi <= 1:
            raise OptionError(f"augment scale must be 0 < low <= high <= 1, got {lo}-{hi}")
        for name in ("hflip", "vflip", "blur"):
            if not 0 <= getattr(self, name) <= 1:
                raise OptionError(f"augment {name} is a probability in [0, 1], got {getattr(self, name)}")
        for name in ("rotate", "shear", "jitter"):
            if getattr(self, name) < 0:
                raise OptionError(f"augment {name} must not be negative, got {getattr(self, name)}")

    def describe(self) -> str:
        """The spec that `parse_augment` reads back to this."""
        fields = asdict(self)
        scale = fields.pop("scale")
        return ",".join([f"scale={scale[0]:g}-{scale[1]:g}", *(f"{k}={v:g}" for k, v in fields.items())])


def parse_augment(value: bool | str | Augment | None) -> Augment | None:
    """None (no augmentation) from False/'off', defaults from True/'on', else a spec of name=value."""
    if isinstance(value, Augment) or value is None:
        return value
    if isinstance(value, bool):
        return Augment() if value else None
    text = value.strip().lower()
    if text in ("off", "none", "false", "0", ""):
        return None
    if text in ("on", "true", "default"):
        return Augment()
    return replace(Augment(), **dict(_setting(token) for token in text.split(",") if token.strip()))


def _setting(token: str) -> tuple[str, object]:
    name, sep, raw = (part.strip() for part in token.partition("="))
    known = Augment.__dataclass_fields__
    if not sep or name not in known:
        raise OptionError(
            f"bad augmentation {token!r}: write name=value with names {', '.join(known)}, "
            "e.g. rotate=15,shear=10,vflip=0.5,scale=0.6-1"
        )
    try:
        if name == "scale":
            lo, _, hi = raw.partition("-")
            return name, (float(lo), float(hi or 1.0))
        return name, float(raw)
    except ValueError:
        raise OptionError(f"bad value in augmentation {token!r}: expected a number") from None


def train_transform(data_config: dict, augment: bool | str | Augment | None = False) -> Callable:
    """The augmented training pipeline for `data_config`'s size and channels; without `augment`, eval's."""
    aug = parse_augment(augment)
    if aug is None:
        return eval_transform(data_config)
    channels = data_config["input_size"][0]
    crop_flip, colour, final = create_transform(
        input_size=data_config["input_size"],
        is_training=True,
        scale=aug.scale,
        hflip=aug.hflip,
        vflip=aug.vflip,
        color_jitter=aug.jitter if channels == 3 and aug.jitter > 0 else None,
        interpolation=data_config.get("interpolation", "bilinear"),
        mean=data_config["mean"],
        std=data_config["std"],
        separate=True,
    )
    steps = [crop_flip]
    if aug.rotate or aug.shear:
        steps.append(transforms.RandomAffine(degrees=aug.rotate, shear=aug.shear or None))
    steps.append(colour)
    if aug.blur:
        size = data_config["input_size"][-1]
        kernel = max(3, (size // 32) | 1)  # odd, about 3 % of the side
        steps.append(transforms.RandomApply([transforms.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=aug.blur))
    steps.append(final)
    return match_channels(transforms.Compose(steps), channels)

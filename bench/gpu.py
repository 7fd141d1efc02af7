"""The GPU path, measured: backbone inference, fine-tuning steps and the U-Net decoder, fp32 beside AMP.

    python -m bench.gpu [--photos DIR] [--steps 30] [--compile] [--out results.json]

Each section runs the project's own code on the first CUDA device (on a CPU, small sizes, as a
smoke test of the script), every variant beside fp32 in the same run:

- backbone inference (EfficientNet-Lite0 with its ImageNet head, the feature engines' TorchEngine):
  images/s of eager NCHW, channels_last, bf16 autocast (the engine's GPU default), fp16 autocast
  and, with `--compile`, torch.compile under bf16; each one's top-1 agreement with fp32 on the
  photos of `--photos` (any folder of JPEGs), which also go through the feature extractor end to
  end (decode workers, pinned batches) for a from-JPEG rate;
- fine-tuning steps (the Trainer, every layer trained, AdamW) at 224 px: images/s in fp32 and with
  AMP, channels_last as the Trainer sets it on a GPU;
- the U-Net decoder of map-train: training steps of 256 px crops and mapping 1024 px windows,
  Mpx/s in fp32 and bf16.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

LITE0 = "efficientnet_lite0"


def timed(fn, steps: int, device: torch.device) -> float:
    """Seconds per call of `fn`, after two warm-up calls."""
    for _ in range(2):
        fn()
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    return (time.perf_counter() - started) / steps


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def inference(device: torch.device, photos: list[Path], batch: int, steps: int, compile_: bool) -> list[dict]:
    """Images/s of each PyTorch inference variant and its top-1 agreement with fp32 on `photos`."""
    from imagefit.features.engines import TorchEngine
    from imagefit.models import create_backbone

    bb = create_backbone(LITE0)
    size = bb.data_config["input_size"][1:]
    x = torch.randn(batch, 3, *size)
    real = _photo_batch(photos, bb.data_config) if photos else None
    variants = {
        "eager fp32 NCHW": TorchEngine(bb.model, device, channels_last=False, bf16=False),
        "channels_last fp32": TorchEngine(bb.model, device, channels_last=True, bf16=False),
        "bf16 autocast (GPU default)": TorchEngine(bb.model, device, channels_last=True, bf16=True),
        "fp16 autocast": _Autocast(bb.model, device, torch.float16),
    }
    if compile_:
        variants["torch.compile bf16"] = _Autocast(torch.compile(bb.model), device, torch.bfloat16)
    rows, reference = [], None
    for name, engine in variants.items():
        seconds = timed(lambda engine=engine: engine(x), steps, device)
        top1 = engine(real).argmax(1) if real is not None else None
        reference = top1 if reference is None else reference
        agree = float((top1 == reference).mean()) if top1 is not None else float("nan")
        rows.append({"variant": name, "images_per_s": batch / seconds, "top1_agreement": agree})
    return rows


class _Autocast:
    """channels_last inference under autocast to `dtype`."""

    def __init__(self, net, device: torch.device, dtype: torch.dtype):
        self.net = net.eval().to(device, memory_format=torch.channels_last)
        self.device, self.dtype = device, dtype

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor):
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.dtype):
            return self.net(x).float().cpu().numpy()


def _photo_batch(photos: list[Path], data_config: dict) -> torch.Tensor:
    from imagefit.data.loader import iterate_batches

    return torch.cat([b.images for b in iterate_batches(photos, data_config, 64, 4)])


def extraction(device: torch.device, photos: list[Path], workers: int) -> dict:
    """Images/s of the feature extractor from JPEG files to vectors (decode included), no cache."""
    from imagefit.features.extract import FeatureExtractor
    from imagefit.models import create_backbone

    bb = create_backbone(LITE0)
    extractor = FeatureExtractor(bb.model, bb.data_config, "torch", 128, workers, False, False)
    extractor(photos[:64])  # warm-up: workers, kernels
    started = time.perf_counter()
    extractor(photos)
    return {"images": len(photos), "images_per_s": len(photos) / (time.perf_counter() - started)}


def finetune_steps(device: torch.device, batch: int, steps: int) -> list[dict]:
    """Images/s of the Trainer fine-tuning every layer, fp32 against automatic mixed precision."""
    from imagefit.models import create_backbone
    from imagefit.train.engine.trainer import Trainer

    rows = []
    for precision in ("fp32", "auto"):
        bb = create_backbone(LITE0, num_classes=2)
        size = bb.train_data_config["input_size"][1:]
        data = [(torch.randn(batch, 3, *size), torch.randint(0, 2, (batch,))) for _ in range(steps)]
        trainer = Trainer(bb.model.train(), data[:2], None, epochs=1, device=device, precision=precision)
        trainer.fit()  # warm-up: kernels, allocator
        trainer = Trainer(bb.model, data, None, epochs=1, device=device, precision=precision)
        _sync(device)
        started = time.perf_counter()
        trainer.fit()
        _sync(device)
        seconds = time.perf_counter() - started
        amp = str(trainer.amp_dtype).replace("torch.", "") if trainer.amp_dtype else "none"
        rows.append({"precision": precision, "amp": amp, "images_per_s": batch * steps / seconds})
    return rows


def unet(device: torch.device, batch: int, crop: int, window: int, steps: int) -> list[dict]:
    """U-Net (map-train's decoder) training and mapping speed in Mpx/s, fp32 and bf16."""
    from imagefit.models.segmentation import create_decoder

    model, _, _ = create_decoder("unet", 6)
    model = model.to(device, memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, crop, crop, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 6, (batch, crop, crop), device=device)
    big = torch.randn(4, 3, window, window, device=device).contiguous(memory_format=torch.channels_last)
    rows = []
    for dtype in (None, torch.bfloat16):
        name = "bf16 autocast" if dtype else "fp32"

        def train_step(dtype=dtype):
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        @torch.inference_mode()
        def map_step(dtype=dtype):
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                return model(big).argmax(1)

        model.train()
        train_s = timed(train_step, steps, device)
        model.eval()
        map_s = timed(map_step, max(2, steps // 3), device)
        rows.append(
            {
                "precision": name,
                "train_mpx_per_s": batch * crop * crop / train_s / 1e6,
                "train_steps_per_s": 1 / train_s,
                "map_mpx_per_s": big.shape[0] * window * window / map_s / 1e6,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, help="a folder of JPEGs for agreement and from-file rates")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--compile", action="store_true", help="also torch.compile the backbone")
    parser.add_argument("--out", type=Path, help="write every row as JSON here too")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    big = cuda  # full sizes on a GPU, a smoke test on a CPU
    photos = sorted(args.photos.rglob("*.jpg")) if args.photos else []
    name = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"device: {name}; torch {torch.__version__}")
    results = {"device": name, "torch": torch.__version__}
    batch = 256 if big else 8
    results["inference"] = inference(device, photos, batch, args.steps, args.compile)
    _table(f"backbone inference, 224 px, batch {batch}", results["inference"])
    if photos:
        results["extraction"] = extraction(device, photos, args.workers)
        print(f"\nfrom JPEG files: {results['extraction']}")
    batch = 64 if big else 4
    results["finetune"] = finetune_steps(device, batch, args.steps if big else 2)
    _table(f"fine-tuning every layer (Trainer), batch {batch}", results["finetune"])
    crop, window, batch = (256, 1024, 16) if big else (64, 128, 2)
    results["unet"] = unet(device, batch, crop, window, args.steps if big else 2)
    title = f"U-Net: training on {crop} px crops (batch {batch}), mapping {window} px windows"
    _table(title, results["unet"])
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


def _table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    for row in rows:
        cells = (f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
        print("  " + "  ".join(cells))


if __name__ == "__main__":
    main()

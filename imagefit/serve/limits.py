"""What one server accepts: upload size, pixels, queue length, waiting time, batch shape."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from imagefit.data.images import max_pixels


@dataclass(frozen=True)
class Limits:
    """Bounds of the server; every one configurable from `imagefit serve` and `imagefit.serve`."""

    max_upload_mb: float = 20.0  # one request's body
    max_files: int = 64  # images in one request
    max_pixels: int | None = None  # width x height of one image; default imagefit's ($IMAGEFIT_MAX_PIXELS)
    queue: int = 256  # images accepted and waiting for the model; beyond it 503 with Retry-After
    timeout_s: float = 30.0  # one request, from its first byte to its answer
    max_batch: int = 16  # images the model runs at once (each batch size warmed holds memory)
    max_wait_ms: float = 5.0  # how long a batch waits for requests still being decoded

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def pixel_limit(self) -> int:
        return max_pixels() if self.max_pixels is None else self.max_pixels

    def as_dict(self) -> dict:
        """The limits in force, as /model reports them."""
        return {**asdict(self), "max_pixels": self.pixel_limit}

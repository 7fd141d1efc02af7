"""Data: image files, folder datasets, and batches ready for a model."""

from imagefit.data.folders import Dataset, Sample, discover_dataset
from imagefit.data.images import IMAGE_EXTENSIONS, ImageReadError, list_images, open_image
from imagefit.data.loader import Batch, iterate_batches

__all__ = [
    "IMAGE_EXTENSIONS",
    "Batch",
    "Dataset",
    "ImageReadError",
    "Sample",
    "discover_dataset",
    "iterate_batches",
    "list_images",
    "open_image",
]

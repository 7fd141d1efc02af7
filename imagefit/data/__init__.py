"""Data: image files, folder datasets, and batches ready for a model."""

from imagefit.lazy import lazy_exports

_EXPORTS = {
    "IMAGE_EXTENSIONS": "imagefit.data.images",
    "Batch": "imagefit.data.loader",
    "Dataset": "imagefit.data.folders",
    "ImageReadError": "imagefit.data.images",
    "Sample": "imagefit.data.folders",
    "discover_dataset": "imagefit.data.folders",
    "iterate_batches": "imagefit.data.loader",
    "list_images": "imagefit.data.images",
    "open_image": "imagefit.data.images",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)

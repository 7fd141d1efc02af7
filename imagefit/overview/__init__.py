"""Many runs at once: `list_runs` (imagefit runs) and `compare` (imagefit compare)."""

from imagefit.lazy import lazy_exports

_EXPORTS = {
    "RunSummary": "imagefit.overview.listing",
    "compare": "imagefit.overview.compare",
    "list_runs": "imagefit.overview.listing",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)

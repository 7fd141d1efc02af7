"""The built-in demo on real images shipped with imagefit: `imagefit demo`, `imagefit.demo()`.

`data/` holds six classes of UC Merced Land Use photos (USGS, public domain) and one Dubai aerial
image with its labels (CC0); their sources and licences are in `data/README.md`.
"""

from imagefit.lazy import lazy_exports

_EXPORTS = {"DemoResult": "imagefit.demo.tour", "demo": "imagefit.demo.tour"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)

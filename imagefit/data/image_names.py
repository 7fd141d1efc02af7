"""Image names as tables write them, resolved to files under an images folder."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from imagefit.data.images import is_image_file, list_images


class AmbiguousName(Exception):
    """A name that matches more than one image file; args: the two files."""


class ImageFinder:
    """Finds the image file a table names: a path relative to `root` (or absolute), or a bare name.

    A name without an extension (`agricultural00`) or without a folder (`cat.1.jpg`) that is not a
    file as written is looked up among the images under `root`; it must match exactly one.
    """

    def __init__(self, root: Path):
        self.root = root
        self._by_key: dict[str, list[Path]] | None = None

    def find(self, name: str) -> Path | None:
        """The file `name` refers to, or None when there is none; AmbiguousName when two match."""
        named = Path(name)
        candidate = named if named.is_absolute() else self.root / named
        if candidate.is_file():
            return candidate
        has_extension = is_image_file(named)
        if has_extension and len(named.parts) > 1:
            return None  # a full relative path: it is where it says or nowhere
        if len(named.parts) > 1:
            matches = [p for p in list_images(candidate.parent) if p.stem == named.name]
            matches = [p for p in matches if p.parent == candidate.parent]
        else:
            matches = self._index().get(named.name if has_extension else named.name + "\0", [])
        if len(matches) > 1:
            raise AmbiguousName(matches[0], matches[1])
        return matches[0] if matches else None

    def _index(self) -> dict[str, list[Path]]:
        """File name -> files, and stem + NUL -> files, of every image under the root (built once)."""
        if self._by_key is None:
            self._by_key = defaultdict(list)
            if self.root.is_dir():
                for path in list_images(self.root):
                    self._by_key[path.name].append(path)
                    self._by_key[path.stem + "\0"].append(path)
        return self._by_key

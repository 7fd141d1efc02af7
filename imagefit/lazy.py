"""Package names resolved on first use (PEP 562): importing a package imports none of its modules.

`imagefit --help` must not pay for torch, timm or scikit-learn, so each package's `__init__`
names what it exports and where it lives, and the module is imported when a name is first read.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable


class _LazyPackage(types.ModuleType):
    """A package whose exported names win over its submodules of the same name.

    The import system binds a submodule to its package's attribute when the submodule is first
    imported (`imagefit.train` the module); the eager imports this replaces bound the function
    afterwards (`imagefit.train` the function), so the function keeps the name here too.
    """

    def __setattr__(self, name: str, value: object) -> None:
        exports = self.__dict__.get("_exported", {})
        submodule = isinstance(value, types.ModuleType) and value.__name__ == f"{self.__name__}.{name}"
        if name in exports and submodule:
            return
        super().__setattr__(name, value)


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable]:
    """`__getattr__` and `__dir__` for `package`, resolving each name of `exports` (name -> module)."""
    module = sys.modules[package]
    module.__class__ = _LazyPackage
    module._exported = exports

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        module.__dict__[name] = value  # later reads are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted(set(module.__dict__) | set(exports))

    return __getattr__, __dir__

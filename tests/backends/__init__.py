"""The stores the contract suite runs over: one module per backend (see tests/contract/conftest.py).

Modules starting with ``_`` are what backends share, not backends.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def all_backends() -> list[ModuleType]:
    """Every backend module, in name order."""
    return [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")  # shared helpers, not backends
    ]

"""One module per trainable model, each defining SPEC; the model's name is its module's name."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI lists MODELS without importing torch, which the specs need
    from ..spec import Spec

MODELS = tuple(sorted(module.name for module in pkgutil.iter_modules(__path__)))


def spec(model: str) -> "Spec":
    """Model `model`'s training spec (imports torch)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; trainable: {', '.join(MODELS)}")
    return importlib.import_module(f"{__name__}.{model}").SPEC

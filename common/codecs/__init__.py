"""Codec registry; importing this package registers the built-in codecs."""

from . import linear_analog  # noqa: F401  (registers itself)
from .registry import Codec, available, get, register

__all__ = ["Codec", "available", "get", "register"]

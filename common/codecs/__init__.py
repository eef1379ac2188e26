"""Codec registry; importing this package registers the built-in codecs."""

from . import generative, learned, linear_analog, separate  # noqa: F401  (each registers its codecs)
from .registry import Codec, available, get, load_all, register

__all__ = ["Codec", "available", "get", "load_all", "register"]

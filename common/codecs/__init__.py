"""Codec registry; importing this package registers the built-in codecs."""

from . import generative, latent_diffusion, learned, linear_analog, separate  # noqa: F401  (each registers its codecs)
from .base import Capabilities, Codec, Decoded
from .registry import available, capabilities, get, load_all, register

__all__ = ["Capabilities", "Codec", "Decoded", "available", "capabilities", "get", "load_all", "register"]

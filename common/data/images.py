"""Image bytes <-> 8-bit RGB arrays, safely.

Every input is converted to uint8 RGB rather than rejected: grayscale, palette,
RGBA (alpha dropped), CMYK and 16-bit images included. The pixel count is
checked from the header before any pixel is decoded, so a decompression bomb
costs nothing.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..serving.errors import InvalidInput, LimitExceeded, quoted

DEFAULT_MAX_PIXELS = 2048 * 2048


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, field: str = "image") -> np.ndarray:
    """Decodes an image file into a uint8 array of shape [height, width, 3]."""
    if not data:
        raise InvalidInput(f"{field}: empty; send the bytes of an image file (PNG, JPEG, WebP, ...)")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below replaces PIL's bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise LimitExceeded(
                    f"{field}: {width}x{height} = {width * height} pixels, over the limit of {max_pixels}"
                )
            if width == 0 or height == 0:
                raise InvalidInput(f"{field}: empty image {width}x{height}")
            image.load()
    except Image.DecompressionBombError as error:  # PIL's own, looser limit
        raise LimitExceeded(f"{field}: over the limit of {max_pixels} pixels ({error})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        # Every way PIL reports a file it cannot read: unknown formats and broken data (OSError,
        # SyntaxError), chunks inflating past its text limits or truncated ("Decompressed data too large",
        # ValueError), early ends (EOFError).
        raise InvalidInput(f"{field}: not a decodable image ({type(error).__name__}: {quoted(str(error))})") from None
    return to_rgb8(image)


def to_rgb8(image: Image.Image) -> np.ndarray:
    """Converts any PIL mode to uint8 RGB, scaling 16/32-bit and float data."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # PIL's own convert("RGB") clips these at 255; rescale instead.
        values = np.asarray(image, dtype=np.float64)
        full_scale = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.clip(np.round(values * (255.0 / full_scale)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        high = 1.0 if values.max(initial=0.0) <= 1.0 else 255.0
        gray = np.clip(np.round(values * (255.0 / high)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def encode_png(array: np.ndarray) -> bytes:
    """Encodes a uint8 [height, width, 3] array as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(array, mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()

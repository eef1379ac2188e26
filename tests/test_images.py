import io

import numpy as np
import pytest
from PIL import Image

from helpers import png_bytes, png_header_only
from semcom.common.data.images import decode_image
from semcom.common.serving.errors import InvalidInput, LimitExceeded


def test_rgb_png_decodes_unchanged():
    image = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(png_bytes(image)), image)


def test_grayscale_becomes_three_equal_channels():
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    rgb = decode_image(png_bytes(gray, mode="L"))
    assert rgb.shape == (4, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], gray)


def test_rgba_drops_alpha():
    rgba = np.zeros((3, 3, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    rgb = decode_image(png_bytes(rgba, mode="RGBA"))
    assert rgb.shape == (3, 3, 3) and (rgb[..., 0] == 200).all() and (rgb[..., 1:] == 0).all()


def test_sixteen_bit_grayscale_is_rescaled_not_clipped():
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="PNG")  # 16-bit PNG
    rgb = decode_image(buffer.getvalue())
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 1, 128, 255])


def test_palette_and_odd_sizes_convert():
    image = Image.new("P", (13, 1))
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.putpixel((3, 0), 1)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    rgb = decode_image(buffer.getvalue())
    assert rgb.shape == (1, 13, 3)
    assert tuple(rgb[0, 0]) == (255, 0, 0) and tuple(rgb[0, 3]) == (0, 255, 0)


@pytest.mark.parametrize("data", [b"", b"not an image", png_header_only(10, 10)])
def test_undecodable_or_empty_bytes_are_invalid_input(data):
    with pytest.raises(InvalidInput, match="image"):
        decode_image(data)


@pytest.mark.parametrize("side", [3000, 100_000])
def test_pixel_limit_is_checked_before_decoding(side):
    # The header alone is rejected: 100000 x 100000 would take 30 GB decoded.
    with pytest.raises(LimitExceeded, match="over the limit of 4194304"):
        decode_image(png_header_only(side, side), max_pixels=4194304)

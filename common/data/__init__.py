"""Data: the procedural scene generator and the bundled sample images."""

from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


def sample_images() -> list[Path]:
    """The bundled demo images (made by `semcom data samples`)."""
    return sorted(SAMPLES_DIR.glob("*.png"))

"""`semcom demo`: the three services as separate processes on loopback, the
bundled samples (street scenes) and one real photo (a held-out Kodak image, when
`semcom data photos` has installed them) sent through them at a few SNRs, a
results table and one side-by-side PNG per image at its own size (original |
received at each SNR). The photo is out of the semantic codec's domain: the
transmitter sends it with the image codec instead, and the table says so."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from semcom.common.data import sample_images
from semcom.common.data.images import decode_image

from .client import RESULT_COLUMNS, configure_channel, format_table, read_images, result_row, transmit_all
from .services import start_processes

DEFAULT_SNRS_DB = (0.0, 10.0, 20.0)
_CAPTION_HEIGHT = 12


def run_demo(out: Path, snrs_db=DEFAULT_SNRS_DB, images: list[Path] | None = None, codec: str = "",
             bandwidth_ratio: float = 0.0, seed: int = 0, precision: str = "auto") -> list[tuple[str, ...]]:
    images = images or [*sample_images(), *demo_photo()]
    codec = codec or default_codec()
    if not images:
        raise FileNotFoundError("no images to send (the bundled samples are missing)")
    to_send = read_images(images)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    received: dict[str, list[tuple[str, np.ndarray]]] = {i.image_id: [] for i in to_send}
    print(f"starting transmitter, channel emulator and receiver ({precision}; logs in {out / 'logs'}) ...")
    with start_processes(out / "logs", channel_args=("--seed", str(seed)),
                         receiver_args=("--precision", precision)) as services:
        with tqdm(total=len(snrs_db) * len(to_send), desc="sending", unit="image") as progress:
            for snr in snrs_db:
                configure_channel(services.channel, snr_db=snr)
                for response in transmit_all(services.transmitter, to_send, codec=codec,
                                             bandwidth_ratio=bandwidth_ratio):
                    rows.append(result_row(response))
                    if response.received_map_png:  # original | received map | regenerated, per SNR
                        received[response.image_id].append(
                            (f"{snr:g} dB: map", _as_size(decode_image(response.received_map_png), response)))
                    received[response.image_id].append(
                        (f"{snr:g} dB: {response.quality.psnr_db:.1f} dB PSNR",
                         decode_image(response.reconstruction_png))
                    )
                    progress.update()
        exit_codes = services.stop()
    if any(exit_codes.values()):
        raise RuntimeError(f"a service did not shut down cleanly: exit codes {exit_codes}")

    print(format_table(RESULT_COLUMNS, rows))
    _write_csv(out / "results.csv", rows)
    for image in to_send:
        path = out / f"{image.image_id}.png"
        side_by_side([("original", decode_image(image.data)), *received[image.image_id]]).save(path)
    print(f"\nwrote {len(to_send)} side-by-side PNGs (original | received at {', '.join(f'{s:g}' for s in snrs_db)} dB, "
          f"{codec} or the codec the table names) and results.csv to {out}/")
    return rows


def demo_photo() -> list[Path]:
    """One held-out Kodak photo, where the photos are installed (else none, and a line says how)."""
    from semcom.common.data.photos import PhotosMissing, photo_paths

    try:
        return [photo_paths("kodak")[-1]]
    except PhotosMissing as error:
        print(f"(no photo in the demo: {error})")
        return []


def _as_size(image: np.ndarray, response) -> np.ndarray:
    size = (response.image_size.width, response.image_size.height)
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.NEAREST))


def default_codec() -> str:
    """The demo shows the semantic codec where its models are shipped, else linear analog."""
    from semcom.common import codecs
    from semcom.common.serving.errors import ServiceError

    try:
        codecs.get("semantic")
        return "semantic"
    except ServiceError:
        return "linear_analog"


def side_by_side(panels: list[tuple[str, np.ndarray]]) -> Image.Image:
    """Panels left to right, each with its caption above."""
    height, width = panels[0][1].shape[:2]
    panel_width = max(width, 6 * max(len(caption) for caption, _ in panels) + 4)
    canvas = Image.new("RGB", (panel_width * len(panels), height + _CAPTION_HEIGHT), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (caption, array) in enumerate(panels):
        canvas.paste(Image.fromarray(array), (i * panel_width, _CAPTION_HEIGHT))
        draw.text((i * panel_width + 2, 0), caption, fill="black")
    return canvas


def _write_csv(path: Path, rows: list[tuple[str, ...]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(RESULT_COLUMNS)
    writer.writerows(rows)
    path.write_text(buffer.getvalue())

"""`semcom sweep`: every quality claim of the project comes from here.

Codecs x channel models x SNRs on the synthetic validation split, run
in-process through the Chain (tools/chain.py: the very encode, channel
and decode code the services run), or with --via-grpc through running services. Metrics per point: PSNR, SSIM,
MS-SSIM where the images are large enough, and mIoU of the segmenter on the
reconstruction against the ground-truth labels (semantic fidelity; for the
semantic_map codec, of the received map itself); with --kid, KID and FID on
128x128 patches of the photos, 64x64 of the scenes (evaluation/perceptual.py). Writes results.csv,
results.md and plots (PNG) of PSNR and mIoU against SNR, and a contact sheet of the first image
as each point received it.
"""

from __future__ import annotations

import csv
import math
import sys
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common import codecs
from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.data.images import decode_image, encode_png
from semcom.common.data.labels import NUM_TRAIN_IDS
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.quality import MS_SSIM_MIN_SIDE, confusion_matrix, mean_iou, ms_ssim, psnr_db, ssim
from semcom.common.wire.frames import Frame

from ..chain import Chain
from . import perceptual

DEFAULT_CHANNELS = ("awgn", "rayleigh")
DEFAULT_SNRS_DB = (-5.0, 0.0, 5.0, 10.0, 15.0, 20.0)
EQUAL_BANDWIDTH_RATIO = 1280 / (64 * 128 * 3)  # the semantic codec's k/n at the CPU preset
PHOTO_BANDWIDTH_RATIOS = (1 / 6, 1 / 12, 1 / 24, 1 / 48)  # on photos, SwinJSCC's and Deep JSCC's usual set
DATA = ("scenes", "kodak")
UNAVAILABLE_METRICS = ("LPIPS: not computed. It needs VGG/AlexNet backbone weights, which no installable package "
                       "ships and this project never downloads.")


@dataclass
class Point:
    codec: str
    channel: str
    snr_db: float
    bandwidth_ratio: float  # complex channel uses per source real value, as sent
    channel_uses: float
    psnr_db: float
    ssim: float
    ms_ssim: float
    miou: float
    images: int
    kid: float = math.nan  # on 128x128 patches of photos, 64x64 of scenes (--kid)
    fid: float = math.nan
    # The run's k/n as asked (0: the codec's own): a table row and a plotted line each. What is sent may
    # differ a little per point: an LDPC frame's codewords fill the budget differently at each MCS.
    requested_ratio: float = 0.0


@dataclass
class Samples:
    """The sweep's first image and each point's reconstruction of it, keyed (codec, channel, requested
    k/n, SNR): the contact sheet."""

    original: np.ndarray | None = None
    reconstructions: dict[tuple, np.ndarray] = field(default_factory=dict)


def default_codecs() -> list[str]:
    """Every registered codec, generative first, then fixed-bandwidth, then adjustable (the table's order)."""
    def order(codec_id: str) -> tuple:
        declared = codecs.capabilities(codec_id)
        return not declared.generative, declared.adjustable_bandwidth, codec_id

    return sorted(codecs.available(), key=order)


def run_sweep(codec_ids=None, channels=DEFAULT_CHANNELS, snrs_db=DEFAULT_SNRS_DB, count: int = 50,
              bandwidth_ratios=(EQUAL_BANDWIDTH_RATIO,), seed: int = 0, via_grpc: str | None = None,
              channel_address: str | None = None, generative_count: int | None = None,
              runtime: DecoderRuntime | None = None, data: str = "scenes", kid: bool = False,
              samples: Samples | None = None) -> list[Point]:
    """One Point per codec (and bandwidth ratio, for codecs whose bandwidth is adjustable), channel and SNR.

    generative_count: fewer images for the diffusion codecs (about a second each on a CPU); default `count`.
    runtime: the in-process receiver's precision and sampler (default fp32, default sampler).
    data: "scenes", the synthetic validation split (labelled: mIoU against the truth), or "kodak", the
    held-out Kodak photos at their own size (`semcom data photos`; no labels, so no mIoU).
    kid: KID and FID of each point's reconstructions on 128x128 patches of the photos, 64x64 of the scenes
    (`semcom data inception`).
    samples: filled with the first image and each point's reconstruction of it (write_outputs' contact sheet).
    """
    runtime = runtime or DecoderRuntime()
    samples = Samples() if samples is None else samples
    codec_ids = default_codecs() if codec_ids is None else codec_ids
    images, labels = _images(data, count)
    samples.original = images[0]
    patch = perceptual.SCENE_PATCH if data == "scenes" else perceptual.PATCH
    # Per image: a point with fewer images (the generative codecs) is compared with the patches of those.
    reference = [perceptual.features(perceptual.patches([image], patch)) for image in images] if kid else None
    files = [encode_png(image) for image in images]
    segmenter = codecs.get("semantic_map")  # its segmenter scores every reconstruction
    points = []
    runs = [(codec_id, ratio) for codec_id in codec_ids for ratio in _ratios(codec_id, bandwidth_ratios)]
    limit = {codec_id: min(count, generative_count or count) if codecs.capabilities(codec_id).generative else count
             for codec_id in codec_ids}
    total = sum(limit[codec_id] for codec_id, _ in runs) * len(channels) * len(snrs_db)
    with tqdm(total=total, desc="sweep", unit="image") as progress:
        for codec_id, ratio in runs:
            codec = codecs.get(codec_id)
            n = limit[codec_id]
            for channel in channels:
                for snr in snrs_db:
                    config = ChannelConfig(model=channel, snr_db=snr, seed=seed, csi="perfect", equalizer="mmse")
                    with (_grpc_transmitter(via_grpc, channel_address, config) if via_grpc
                          else nullcontext(_in_process_transmitter(Chain(config, runtime)))) as transmit:
                        point, first = _measure(codec, codec_id, ratio, snr, channel, files[:n], images[:n],
                                                labels[:n], segmenter, transmit, progress, runtime, reference, patch)
                    points.append(point)
                    if first is not None:
                        samples.reconstructions[codec_id, channel, ratio, snr] = first
    return points


def _ratios(codec_id: str, bandwidth_ratios) -> list[float]:
    """The ratios a codec is swept at: those in its range if its bandwidth is adjustable (the others skipped,
    and said), else its own (0.0)."""
    if not codecs.capabilities(codec_id).adjustable_bandwidth:
        return [0.0]
    codec = codecs.get(codec_id)
    accepted = [ratio for ratio in bandwidth_ratios if codec.accepts_ratio(ratio)]
    if len(accepted) < len(bandwidth_ratios):
        skipped = ", ".join(f"{ratio:.4f}" for ratio in bandwidth_ratios if ratio not in accepted)
        print(f"sweep: {codec_id} does not send k/n {skipped}: skipped there", file=sys.stderr)
    return accepted


def _images(data: str, count: int) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    if data == "scenes":
        images, labels = materialize(SyntheticScenes("val", count))
        return list(images), list(labels)
    if data == "kodak":
        from semcom.common.data.photos import load_photos

        photos = load_photos("kodak")[:count]
        return photos, [None] * len(photos)
    raise ValueError(f"--data: {data!r}, expected one of {', '.join(DATA)}")


def _in_process_transmitter(chain: Chain):
    def transmit(data: bytes, codec_id: str, ratio: float, design_snr_db: float, frame_id: str):
        # Fixed ids: the generative decoders' noise is seeded by the frame id, so runs repeat exactly.
        trip = chain.send(decode_image(data, max_pixels=1 << 24), codec_id, ratio, frame_id, design_snr_db=design_snr_db)
        return trip.received, trip.image

    return transmit


@contextmanager
def _grpc_transmitter(transmitter: str, channel_address: str | None, config: ChannelConfig):
    """Configures the running channel emulator and yields a transmit function over one gRPC channel."""
    from semcom.common.serving.rpc import sync_channel
    from semcom.common.wire.pb import transmitter_pb2, transmitter_pb2_grpc

    from ..client import configure_channel

    if not channel_address:
        raise ValueError("--via-grpc needs --channel-address to configure the channel emulator")
    configure_channel(channel_address, model=config.model, snr_db=config.snr_db, seed=config.seed, csi=config.csi,
                      equalizer=config.equalizer)
    with sync_channel(transmitter) as channel:
        stub = transmitter_pb2_grpc.TransmitterStub(channel)

        def transmit(data: bytes, codec_id: str, ratio: float, design_snr_db: float, frame_id: str):
            # The transmitter names its frames itself; the sweep scores the reconstruction itself, as in process.
            response = stub.Transmit(transmitter_pb2.TransmitRequest(image=data, codec=codec_id, bandwidth_ratio=ratio,
                                                                     design_snr_db=design_snr_db,
                                                                     scoring=transmitter_pb2.SCORING_NONE), timeout=60)
            if response.codec != codec_id:  # the in-process sweep measures the codec as asked
                raise ValueError(f"the transmitter sent {frame_id} with {response.codec}, not {codec_id} (out of its "
                                 "domain): run it with --out-of-domain off to sweep the codec itself")
            return response, decode_image(response.reconstruction_png)

        yield transmit


def _measure(codec, codec_id, ratio, snr, channel, files, images, labels, segmenter, transmit, progress,
             runtime: DecoderRuntime, reference: list[np.ndarray] | None, patch: int) -> tuple[Point, np.ndarray | None]:
    """One point, and its reconstruction of the first image (None for a codec scored on its labels);
    reference: each original's features of its patch x patch patches, when KID and FID are measured."""
    psnrs, ssims, ms_ssims, uses, ratios, reconstructions = [], [], [], [], [], []
    confusion = np.zeros((NUM_TRAIN_IDS, NUM_TRAIN_IDS), dtype=np.int64)
    for index, (data, image, truth) in enumerate(zip(files, images, labels)):
        # Digital codecs choose their rate for the nominal SNR (the transmitter knows the average SNR).
        received, reconstruction = transmit(data, codec_id, ratio, snr, f"sweep-{index}")
        uses.append(received.channel.channel_uses)  # a received Frame or a TransmitResponse: both report it
        ratios.append(received.channel.channel_uses / image.size)
        if codec.capabilities.decodes_to_labels:
            if not isinstance(received, Frame):
                raise ValueError("semantic_map is scored on its received labels, in-process only: drop --via-grpc")
            predicted = codec.decode_labels(Chain.equalize(received), runtime)
        else:
            psnrs.append(psnr_db(image, reconstruction))
            ssims.append(ssim(image, reconstruction))
            if min(image.shape[:2]) >= MS_SSIM_MIN_SIDE:
                ms_ssims.append(ms_ssim(image, reconstruction))
            predicted = segmenter.segment(reconstruction) if truth is not None else None
            reconstructions.append(reconstruction)
        if truth is not None:  # photos have no labels: no mIoU
            confusion += confusion_matrix(truth, predicted, NUM_TRAIN_IDS)
        progress.update()
    miou = mean_iou(confusion) if confusion.any() else math.nan
    kid = fid = math.nan
    if reference is not None and reconstructions:
        originals = np.concatenate(reference[:len(reconstructions)])
        measured = perceptual.features(perceptual.patches(reconstructions, patch))
        kid, fid = perceptual.kid(originals, measured), perceptual.fid(originals, measured)
    point = Point(codec_id, channel, snr, float(np.mean(ratios)), float(np.mean(uses)), _mean(psnrs), _mean(ssims),
                  _mean(ms_ssims), miou, len(files), kid, fid, ratio)
    return point, reconstructions[0] if reconstructions else None


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def write_outputs(points: list[Point], out: Path, samples: Samples | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    rows = [asdict(p) for p in points]
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "results.md").write_text(markdown_table(points))
    written = [out / "results.csv", out / "results.md", plot(points, out / "psnr_miou_vs_snr.png")]
    if any(math.isfinite(p.kid) and math.isfinite(p.psnr_db) for p in points):
        written.append(plot_perception_distortion(points, out / "psnr_vs_kid.png"))
    if samples is not None and samples.reconstructions:
        written.append(contact_sheet(samples, out / "contact_sheet.png"))
    return written


CONTACT_WIDTH = 256  # pixels a panel of the contact sheet is wide


def contact_sheet(samples: Samples, path: Path) -> Path:
    """A row per codec, channel and k/n, a column per SNR, the original first in each row: the first
    image as each point received it, at CONTACT_WIDTH pixels a panel."""
    from PIL import Image

    from ..demo import side_by_side

    def thumbnail(image: np.ndarray) -> np.ndarray:
        height = round(image.shape[0] * CONTACT_WIDTH / image.shape[1])
        return np.asarray(Image.fromarray(image).resize((CONTACT_WIDTH, height), Image.Resampling.LANCZOS))

    rows: dict[tuple, list] = {}
    for (codec, channel, ratio, snr), image in samples.reconstructions.items():
        caption = (f"{codec} k/n={ratio:.4f}" if ratio else codec) + f" {channel} {snr:g} dB"
        rows.setdefault((codec, channel, ratio), []).append((caption, thumbnail(image)))
    original = ("original", thumbnail(samples.original))
    strips = [side_by_side([original, *panels]) for panels in rows.values()]
    sheet = Image.new("RGB", (max(strip.width for strip in strips), sum(strip.height for strip in strips)), "white")
    top = 0
    for strip in strips:
        sheet.paste(strip, (0, top))
        top += strip.height
    sheet.save(path)
    return path


def markdown_table(points: list[Point]) -> str:
    snrs = sorted({p.snr_db for p in points})
    lines = ["PSNR (dB) / mIoU per SNR (dB); k/n in complex channel uses per source real value.", "",
             "| codec | channel | k/n | " + " | ".join(f"{s:g} dB" for s in snrs) + " |",
             "|---|---|---|" + "---|" * len(snrs)]
    for (codec, channel, ratio), row in _rows(points).items():
        cells = [(f"{row[s].psnr_db:.1f}" if math.isfinite(row[s].psnr_db) else "–")
                 + (f" / {row[s].miou:.2f}" if math.isfinite(row[s].miou) else "") for s in snrs]
        lines.append(f"| {codec} | {channel} | {ratio:.4f} | " + " | ".join(cells) + " |")
    if any(math.isfinite(p.kid) for p in points):
        lines += ["", "KID x 1000 / FID on image patches per SNR (dB); lower is better.", "",
                  "| codec | channel | k/n | " + " | ".join(f"{s:g} dB" for s in snrs) + " |",
                  "|---|---|---|" + "---|" * len(snrs)]
        for (codec, channel, ratio), row in _rows(points).items():
            cells = [f"{1000 * row[s].kid:.1f} / {row[s].fid:.0f}" if math.isfinite(row[s].kid) else "–" for s in snrs]
            lines.append(f"| {codec} | {channel} | {ratio:.4f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _rows(points: list[Point]) -> dict[tuple, dict[float, Point]]:
    """{(codec, channel, the k/n sent, averaged over the row): {SNR: point}}, one row per run (codec and
    requested k/n), in the points' order."""
    runs: dict[tuple, dict[float, Point]] = {}
    for p in points:
        runs.setdefault((p.codec, p.channel, p.requested_ratio), {})[p.snr_db] = p
    return {(codec, channel, float(np.mean([p.bandwidth_ratio for p in row.values()]))): row
            for (codec, channel, _), row in runs.items()}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def _colours(points: list[Point]) -> dict[tuple[str, float], str]:
    """A colour per run (codec, requested k/n), the same in every plot of the points."""
    runs = list(dict.fromkeys((p.codec, p.requested_ratio) for p in points))
    return {run: f"C{i}" for i, run in enumerate(runs)}


def plot_perception_distortion(points: list[Point], path: Path) -> Path:
    """PSNR against KID per codec and channel, one point per SNR (labelled): the perception-distortion
    trade-off (Blau & Michaeli 2018). Up and to the left is better on both."""
    plt = _pyplot()
    channels = list(dict.fromkeys(p.channel for p in points))
    figure, axes = plt.subplots(1, len(channels), figsize=(5.5 * len(channels), 4.5), squeeze=False)
    for column, channel in enumerate(channels):
        axis = axes[0, column]
        for (codec, ratio), colour in _colours(points).items():
            series = sorted((p for p in points if p.codec == codec and p.channel == channel
                             and p.requested_ratio == ratio
                             and math.isfinite(p.kid) and math.isfinite(p.psnr_db)), key=lambda p: p.snr_db)
            if not series:
                continue
            axis.plot([1000 * p.kid for p in series], [p.psnr_db for p in series], marker="o", color=colour,
                      label=f"{codec} (k/n={series[0].bandwidth_ratio:.3f})")
            for p in series:
                axis.annotate(f"{p.snr_db:g}", (1000 * p.kid, p.psnr_db), fontsize=7, xytext=(3, 3),
                              textcoords="offset points")
        axis.set(title=f"{channel}: PSNR against KID (labels: SNR dB)", xlabel="KID x 1000 (lower: more realistic)",
                 ylabel="PSNR (dB)")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot(points: list[Point], path: Path) -> Path:
    plt = _pyplot()
    channels = list(dict.fromkeys(p.channel for p in points))
    figure, axes = plt.subplots(2, len(channels), figsize=(5.5 * len(channels), 7.5), squeeze=False)
    colours = _colours(points)
    for column, channel in enumerate(channels):
        for (codec, ratio), colour in colours.items():
            series = sorted((p for p in points if p.codec == codec and p.channel == channel
                             and p.requested_ratio == ratio), key=lambda p: p.snr_db)
            snrs = [p.snr_db for p in series]
            bound = codecs.capabilities(codec).bound  # the ideal code: dashed, beside its real LDPC twin
            label = f"{codec}{' (ideal-code bound)' if bound else ''} (k/n={series[0].bandwidth_ratio:.3f})"
            style = {"marker": "o", "color": colour, "label": label, "linestyle": "--" if bound else "-"}
            if any(math.isfinite(p.psnr_db) for p in series):
                axes[0, column].plot(snrs, [p.psnr_db for p in series], **style)
            axes[1, column].plot(snrs, [p.miou for p in series], **style)
        axes[0, column].set(title=f"{channel}: PSNR", xlabel="SNR (dB)", ylabel="PSNR (dB)")
        axes[1, column].set(title=f"{channel}: mIoU of the segmenter on the reconstruction", xlabel="SNR (dB)",
                            ylabel="mIoU", ylim=(0, 1))
        for axis in axes[:, column]:
            axis.grid(alpha=0.3)
    axes[1, 0].legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path

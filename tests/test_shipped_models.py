"""The shipped weights: their cards, the quality targets of the issue, and
the receiver decoding real frames with them (in-process and over gRPC)."""

import numpy as np
import pytest

from helpers import decode_frame
from semcom.channel_emulator.emulator import ChannelConfig, ChannelEmulator
from semcom.common import codecs
from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.data.images import decode_image, encode_png
from semcom.common.data.labels import NUM_TRAIN_IDS
from semcom.common.models import store
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.quality import confusion_matrix, mean_iou, pixel_accuracy, psnr_db
from semcom.common.serving.errors import InvalidInput
from semcom.common.wire.pb import transmitter_pb2
from semcom.receiver.pipeline import equalize_frame

VAL_IMAGES, VAL_LABELS = materialize(SyntheticScenes("val", 100))


@pytest.mark.parametrize("name", ["segmenter", "map_codec", "latent_codec", "deep_jscc", "photo_vae", "latent_diffusion"])
def test_every_model_ships_with_a_card_whose_sha256_matches(name):
    card = store.card(name)
    assert card["sha256"] == store.sha256_of(store.WEIGHTS_DIR / f"{name}.pt")
    for key in ("command", "data", "steps", "wall_seconds", "device"):
        assert card["training"][key] not in (None, "")
    assert store.load(name)  # loads with weights_only=True and the checked digest


def test_missing_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(store.WeightsMissing, match="run `semcom train deep_jscc` first"):
        store.load("deep_jscc", tmp_path)


def test_segmenter_reaches_0_90_miou_on_clean_validation_images():
    codec = codecs.get("semantic_map")
    confusion = sum(confusion_matrix(labels, codec.segment(image), NUM_TRAIN_IDS)
                    for image, labels in zip(VAL_IMAGES, VAL_LABELS))
    assert mean_iou(confusion) >= 0.90


def test_map_codec_keeps_the_sent_map_at_0_95_pixel_accuracy_at_10_db_awgn():
    codec = codecs.get("semantic_map")
    channel = ChannelEmulator(ChannelConfig(snr_db=10.0, seed=1))
    confusion = np.zeros((NUM_TRAIN_IDS, NUM_TRAIN_IDS), np.int64)
    for i, image in enumerate(VAL_IMAGES):
        sent = codec.segment(image)
        received, _ = channel.apply(codec.encode(image, codec.default_bandwidth_ratio, f"f{i}"))
        confusion += confusion_matrix(sent, codec.decode_labels(equalize_frame(received), DecoderRuntime()), NUM_TRAIN_IDS)
    assert pixel_accuracy(confusion) >= 0.95


def test_deep_jscc_decodes_real_frames_better_at_higher_snr():
    codec = codecs.get("deep_jscc")
    psnr = {}
    for snr in (0.0, 20.0):
        channel = ChannelEmulator(ChannelConfig(model="rayleigh", snr_db=snr, seed=2))
        psnr[snr] = np.mean([psnr_db(image, decode_frame(channel.apply(codec.encode(image, codec.default_bandwidth_ratio,
                                                                                       "f"))[0]))
                             for image in VAL_IMAGES[:20]])
    assert 15 < psnr[0.0] < psnr[20.0]
    assert codec.encode(VAL_IMAGES[0], codec.default_bandwidth_ratio, "f").channel_uses == 64 * 128 * 3 // 12


def test_fixed_bandwidth_codecs_refuse_another_bandwidth():
    with pytest.raises(InvalidInput, match="fixed k/n = 0.0417"):
        codecs.get("semantic_map").encode(VAL_IMAGES[0], 0.1, "f")


@pytest.mark.parametrize("codec", ["deep_jscc", "semantic_map"])
def test_the_receiver_service_decodes_learned_codecs(transmitter, codec):
    image = VAL_IMAGES[0]
    response = transmitter.Transmit(transmitter_pb2.TransmitRequest(image=encode_png(image), codec=codec), timeout=60)
    learned = codecs.get(codec)
    assert response.channel_uses == round(image.size * learned.default_bandwidth_ratio)  # 1/12 and 1/24
    reconstruction = decode_image(response.reconstruction_png)
    assert reconstruction.shape == image.shape
    if codec == "deep_jscc":
        assert response.quality.psnr_db > 18

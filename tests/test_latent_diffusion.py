"""The class-free generative photo codec (`latent_diffusion`, issue 16) with its shipped weights: the
bandwidth it sends, its decoding from what the channel left, its refusals, through the services too."""

from __future__ import annotations

from dataclasses import replace

import grpc
import numpy as np
import pytest

from helpers import assert_rpc_error, decode_frame, needs_photos, png_bytes, pretend_retrained
from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common import codecs
from semcom.common.codecs.latent_diffusion import LatentDiffusionCodec, start_timestep
from semcom.common.data import photos
from semcom.common.models import cpu, runtime, store
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.models.sampling import CosineSchedule
from semcom.common.models.store import WeightsMissing
from semcom.common.quality import psnr_db
from semcom.common.serving.errors import InvalidInput, LimitExceeded
from semcom.common.wire.pb import transmitter_pb2
from semcom.tools.chain import Chain

CODEC = codecs.get("latent_diffusion")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A crop of a held-out Kodak photo (never trained on), odd-sized so that padding is exercised (the
    tests that use it are marked needs_photos)."""
    return np.ascontiguousarray(photos.load_photos("kodak")[0][100:229, 200:397])  # 129x197


@pytest.mark.parametrize("ratio,maps", [(1 / 48, 8), (1 / 96, 4), (1 / 192, 2)])
def test_it_sends_the_first_maps_of_the_latent_for_the_asked_ratio(ratio, maps):
    frame = CODEC.encode(np.zeros((64, 96, 3), np.uint8), ratio, "ratio")
    assert frame.channel_uses == maps * 8 * 12 // 2 == round(64 * 96 * 3 * ratio)
    with pytest.raises(InvalidInput, match="outside latent_diffusion's range 1/192 .* to 1/48"):
        CODEC.encode(np.zeros((64, 96, 3), np.uint8), 1 / 24, "too much")


@needs_photos
def test_a_photo_comes_back_at_its_size_better_with_more_snr_and_more_bandwidth(photo):
    psnr = {}
    for ratio in (1 / 48, 1 / 192):
        for snr in (-5.0, 10.0):
            trip = Chain(ChannelConfig(snr_db=snr, seed=1)).send(photo, "latent_diffusion", ratio, "photo")
            assert trip.image.shape == photo.shape
            psnr[ratio, snr] = psnr_db(photo, trip.image)
    assert psnr[1 / 48, 10.0] > psnr[1 / 48, -5.0] + 1 and psnr[1 / 48, 10.0] > psnr[1 / 192, 10.0] + 1
    assert psnr[1 / 48, 10.0] > 22  # the photo, not another picture (a grey image: ~12 dB)


@needs_photos
def test_an_int8_receiver_decodes_a_photo_with_its_onnx_models_close_to_fp32(photo):
    int8 = DecoderRuntime("int8")
    for ratio, snr in ((1 / 48, 10.0), (1 / 96, 0.0)):
        received = Chain(ChannelConfig(snr_db=snr, seed=3)).transmit(CODEC.encode(photo, ratio, f"int8-{snr}"))
        reference, image = decode_frame(received), decode_frame(received, int8)
        assert abs(psnr_db(photo, image) - psnr_db(photo, reference)) < 0.5  # the bound over the sweep
        assert psnr_db(reference, image) > 28  # the same picture, not just as far from the photo
        assert not np.array_equal(reference, image)  # integer kernels, not the fp32 network again
    # What ran: the ISA family's artifact of each quantized part (7-bit weights without int8 dot products).
    suffix = "_int8.onnx" if cpu.detect().int8_dot_product else "_int8_7bit.onnx"
    assert runtime.load_part("latent_diffusion", "net").path.name == f"latent_diffusion_net{suffix}"
    assert runtime.load_part("photo_vae", "decoder").path.name == f"photo_vae_decoder{suffix}"
    assert runtime.load_part("latent_diffusion", "head").path.name == "latent_diffusion_head.onnx"


@needs_photos
def test_decoding_is_seeded_by_the_frame_and_starts_later_on_a_better_channel(photo):
    received = {snr: Chain(ChannelConfig(snr_db=snr, seed=2)).transmit(CODEC.encode(photo, 1 / 48, f"seed-{snr}"))
                for snr in (0.0, 20.0)}
    once, again = decode_frame(received[0.0]), decode_frame(received[0.0])
    np.testing.assert_array_equal(once, again)  # the sampler's noise comes from the frame id
    other_id = decode_frame(replace(received[0.0], frame_id="another"))
    assert not np.array_equal(once, other_id)
    # The head's posterior variance follows the channel: a cleaner channel, a lower start timestep.
    starts = {}
    for snr, frame in received.items():
        _, log_variance = DecoderRuntime().network("latent_diffusion", "head")(CODEC.received_maps(Chain.equalize(frame)))
        starts[snr] = start_timestep(CosineSchedule(), log_variance)
    assert starts[20.0] < starts[0.0]


def test_bad_frames_and_sizes_are_refused():
    frame = Chain().transmit(CODEC.encode(np.full((37, 91, 3), 90, np.uint8), 1 / 96, "bad"))
    short = replace(frame, blocks=[replace(frame.blocks[0], symbols=frame.blocks[0].symbols[:-5])])
    with pytest.raises(InvalidInput, match="feature maps"):
        decode_frame(short)
    with pytest.raises(InvalidInput, match="feature maps"):
        decode_frame(short, DecoderRuntime("int8"))
    with pytest.raises(LimitExceeded, match="1024x1536"):
        CODEC.encode(np.zeros((1100, 1600, 3), np.uint8), 1 / 48, "large")


def test_through_the_services_a_wrong_ratio_gets_invalid_argument_and_the_next_call_works(transmitter):
    image = png_bytes(np.full((40, 48, 3), 120, np.uint8))
    assert_rpc_error(lambda: transmitter.Transmit(transmitter_pb2.TransmitRequest(
        image=image, codec="latent_diffusion", bandwidth_ratio=1 / 6), timeout=60),
        grpc.StatusCode.INVALID_ARGUMENT, "outside latent_diffusion's range")
    response = transmitter.Transmit(transmitter_pb2.TransmitRequest(image=image, codec="latent_diffusion",
                                                                    bandwidth_ratio=1 / 96), timeout=60)
    assert response.codec == "latent_diffusion" and response.channel_uses == round(40 * 48 * 3 / 96)


def test_a_photo_vae_it_was_not_trained_on_is_refused_with_the_fix(monkeypatch):
    """Its networks work in one VAE's latent space: a retrained VAE would feed them another."""
    assert store.card("latent_diffusion")["training"]["trained_on"] == {"photo_vae": store.card("photo_vae")["sha256"]}
    LatentDiffusionCodec().check_models()  # the shipped pair
    pretend_retrained(monkeypatch, "photo_vae")
    with pytest.raises(WeightsMissing, match="made with photo_vae .* `semcom train latent_diffusion`"):
        LatentDiffusionCodec().check_models()

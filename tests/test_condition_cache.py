"""Condition caching: the UNet's condition-only work (every SPADE's scale and shift) computed once per frame
and reused by every sampler step gives the uncached network's output, at every precision, through the
samplers (guidance included) and the receiver's decode; and it is computed once per sampler run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import decode_frame
from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common import codecs
from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.models import runtime, store
from semcom.common.models.diffusion import SemanticDiffusionUNet
from semcom.common.models.runtime import DecoderRuntime
from semcom.common.models.sampling import (
    Conditioned, CosineSchedule, DDIMSampler, DPMSolverSampler, SamplerSettings, bound, tiled, two_stage, uncached,
)
from semcom.tools.chain import Chain

RNG = np.random.default_rng(0)
CONDITION = RNG.random((2, 22, 48, 72), dtype=np.float32)  # not a multiple of 8: the levels' sizes round up
X = RNG.standard_normal((2, 3, 48, 72), dtype=np.float32)
T = np.array([999, 300])


@pytest.mark.parametrize("height, width", [(32, 64), (37, 53)])
def test_the_cached_modulations_give_the_networks_output_exactly(height, width):
    torch.manual_seed(0)
    net = SemanticDiffusionUNet(num_classes=19, widths=(8, 16, 24), embedding_dim=32).eval()
    for spade in [module for module in net.modules() if hasattr(module, "gamma")]:
        torch.nn.init.normal_(spade.gamma.weight, std=0.3)  # trained-like maps, not the zero-output init
    x, t, condition = torch.randn(3, 3, height, width), torch.tensor([0, 500, 999]), torch.rand(3, 22, height, width)
    with torch.no_grad():
        modulations = net.modulations(condition)
        assert len(modulations) == 2 * 15  # a scale and a shift for each of the UNet's SPADEs
        assert torch.equal(net.denoise(x, t, modulations), net(x, t, condition))
        with pytest.raises(ValueError, match="fewer cached modulations"):
            net.denoise(x, t, modulations[:-2])
        with pytest.raises(ValueError, match="more cached modulations"):
            net.denoise(x, t, [*modulations, *modulations[:2]])
        with pytest.raises(ValueError, match="a batch of 1 for a batch of 3"):
            net.denoise(x, t, [m[:1] for m in modulations])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_trained_unet_bound_to_its_condition_equals_its_forward(precision):
    runtime_ = DecoderRuntime(precision)
    net = store.load("diffusion")["net"]
    forward = runtime_.torch_function(net)  # the network's own one-pass output
    predictor = runtime_.torch_unet(net)
    assert isinstance(predictor, Conditioned) and not isinstance(uncached(predictor), Conditioned)
    step = bound(predictor, CONDITION)
    for t in (T, np.array([5, 5])):
        # bf16 too: the cached maps stay the bf16 tensors forward computes.
        assert np.array_equal(step(X, t), forward(X, t, CONDITION))
        assert np.array_equal(uncached(predictor)(X, t, CONDITION), forward(X, t, CONDITION))


def test_the_int8_predictor_bound_or_not_gives_the_same_numbers():
    predictor = DecoderRuntime("int8").noise_predictor()
    assert isinstance(predictor, Conditioned)
    # The same two graphs either way (int8 has no one-pass graph): bound once, or bound at each call.
    assert np.array_equal(bound(predictor, CONDITION)(X, T), uncached(predictor)(X, T, CONDITION))


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_photo_codecs_unet_caches_its_condition_too(precision):
    """latent_diffusion's UNet (the same class, on the VAE latent): bound to its condition at every precision, and
    at int8 its two graphs stay close to the fp32 network."""
    net = store.load("latent_diffusion")["net"]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, net.in_channels, 16, 24), dtype=np.float32)
    condition = rng.standard_normal((1, net.condition_channels, 16, 24), dtype=np.float32)
    t = np.array([600])
    predictor = DecoderRuntime(precision).noise_predictor("latent_diffusion")
    assert isinstance(predictor, Conditioned)
    cached = bound(predictor, condition)(x, t)
    if precision == "fp32":  # called with the condition, the torch UNet runs its one-pass forward
        assert np.array_equal(cached, predictor(x, t, condition))
    else:
        fp32 = bound(DecoderRuntime().noise_predictor("latent_diffusion"), condition)(x, t)
        assert float(np.mean((cached - fp32) ** 2) / np.mean(fp32**2)) < 0.05


def real_step_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first (x_t, t, condition) the receiver's sampler feeds the UNet for a real received frame."""
    image = materialize(SyntheticScenes("val", 1))[0][0]
    chain = Chain(ChannelConfig(snr_db=8.0, seed=4, csi="perfect"))
    frame = chain.equalize(chain.transmit(chain.encode(image, "semantic", frame_id="condition-cache")))
    codec, steps = codecs.get("semantic"), []
    codec.generate([codec.prepare(frame, chain.runtime)], chain.runtime, observe=lambda *inputs: steps.append(inputs))
    return steps[0]


def test_the_int8_artifact_is_two_graphs_whose_step_takes_the_condition_graphs_modulations():
    unet = runtime.load_artifact(runtime.artifact_name())
    outputs = [tensor.name for tensor in unet.condition.session.get_outputs()]
    assert [tensor.name for tensor in unet.step.session.get_inputs()] == ["x", "t", *outputs]
    assert len(outputs) == 30
    assert unet.card["condition_graph"]["sha256"] == unet.condition.card["sha256"]
    # Close to the fp32 network's own output (both graphs int8) on a real frame's sampler input.
    x, t, condition = real_step_inputs()
    reference = DecoderRuntime().torch_unet(store.load("diffusion")["net"])(x, t, condition)
    relative = float(np.mean((unet(x, t, condition) - reference) ** 2) / np.mean(reference**2))
    assert relative < 0.02, relative


class CountingNetwork:
    """A real network split in two, counting how often each half runs."""

    def __init__(self):
        self.encodes = self.steps = 0
        self.unet = DecoderRuntime().torch_unet(store.load("diffusion")["net"])

    def predictor(self) -> Conditioned:
        def encode(condition):
            self.encodes += 1
            return self.unet.bind(condition)  # the real cache, as an opaque one

        def step(x, t, cached):
            self.steps += 1
            return cached(x, t)

        return two_stage(lambda condition: (encode(condition),), step)


@pytest.mark.parametrize("sampler, guidance", [(DDIMSampler, 1.0), (DDIMSampler, 2.0), (DPMSolverSampler, 1.0)])
def test_a_sampler_encodes_the_condition_once_per_run_and_matches_the_uncached_run(sampler, guidance):
    counting = CountingNetwork()
    run = sampler(CosineSchedule(), steps=4, guidance_scale=guidance)
    shape = X.shape
    cached = run.sample(counting.predictor(), CONDITION, shape, rng=np.random.default_rng(1))
    # Guidance: the conditional and the null condition bound together, once.
    assert (counting.encodes, counting.steps) == (1, 4)
    plain = run.sample(uncached(counting.predictor()), CONDITION, shape, rng=np.random.default_rng(1))
    assert (counting.encodes, counting.steps) == (5, 8)  # once per step
    assert np.array_equal(cached, plain)


def test_tiles_redo_their_condition_per_step_to_keep_memory_a_tiles():
    counting = CountingNetwork()
    predict = tiled(counting.predictor(), (32, 48), 16)
    run = DDIMSampler(CosineSchedule(), steps=2)
    run.sample(predict, CONDITION, X.shape, rng=np.random.default_rng(2))
    tiles = 4  # 48x72 in 32x48 tiles overlapping by 16: 2 x 2
    assert counting.encodes == counting.steps == 2 * tiles


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_receiver_decodes_the_same_image_with_the_cache_on_or_off(precision):
    image = materialize(SyntheticScenes("val", 1))[0][0]
    chain = Chain(ChannelConfig(snr_db=8.0, seed=4, csi="perfect"))
    frame = chain.transmit(chain.encode(image, "semantic", frame_id="condition-cache"))
    on = decode_frame(frame, DecoderRuntime(precision, SamplerSettings(condition_cache=True)))
    off = decode_frame(frame, DecoderRuntime(precision, SamplerSettings(condition_cache=False)))
    assert on.shape == image.shape
    assert np.array_equal(on, off)

"""The networks: forward shapes, parameter/FLOP counts, and short real
training runs through the training harness that must lower the loss."""

import numpy as np
import pytest
import torch

from semcom.common.data.datasets import SyntheticScenes, materialize
from semcom.common.models import store
from semcom.common.models.jscc import (
    ImageDecoder, ImageEncoder, LatentDecoder, LatentEncoder, MapDecoder, MapEncoder, from_symbols, to_symbols,
)
from semcom.common.models.layers import CBAM, count_flops, count_parameters
from semcom.common.models.segmenter import AttentionUNet
from semcom.tools.training.loop import TrainConfig, train
from semcom.tools.training.specs import MODELS


@pytest.mark.parametrize("levels", [2, 3, 4])
def test_segmenter_levels_are_configurable_and_keep_the_resolution(levels):
    net = AttentionUNet(num_classes=19, base_channels=8, levels=levels)
    assert net(torch.rand(2, 3, 64, 128)).shape == (2, 19, 64, 128)


def test_cbam_keeps_shape_and_counts_are_reported():
    assert CBAM(16)(torch.rand(1, 16, 8, 8)).shape == (1, 16, 8, 8)
    net = AttentionUNet()
    assert 100_000 < count_parameters(net) < 2_000_000
    assert count_flops(net, torch.rand(1, 3, 64, 128)) > 1e8


def test_symbols_have_unit_power_per_item_and_map_back_to_features():
    features = torch.randn(3, 4, 16, 32) * torch.tensor([0.1, 1.0, 10.0]).view(3, 1, 1, 1)
    symbols = to_symbols(features)
    assert symbols.shape == (3, 1024) and symbols.dtype == torch.complex64
    torch.testing.assert_close(symbols.abs().pow(2).mean(1), torch.ones(3))
    planes = from_symbols(symbols, torch.full((3, 1024), 0.01), (4, 16, 32))
    assert planes.shape == (3, 8, 16, 32)
    torch.testing.assert_close(planes[:, 4:], torch.full((3, 4, 16, 32), -2.0))  # log10 of the error variance


@pytest.mark.parametrize("encoder,decoder,input_shape,symbols", [
    (MapEncoder(), MapDecoder(), (2, 19, 64, 128), 1024),
    (ImageEncoder(), ImageDecoder(), (2, 3, 64, 128), 1280),
])
def test_codec_networks_round_trip_shapes(encoder, decoder, input_shape, symbols):
    features = encoder(torch.rand(*input_shape))
    z = to_symbols(features)
    assert z.shape == (2, symbols)
    out = decoder(from_symbols(z, torch.full(z.shape, 0.1), tuple(features.shape[1:])))
    assert out.shape[-2:] == input_shape[-2:]


def test_latent_encoder_gives_mean_and_log_variance():
    mean, log_variance = LatentEncoder()(torch.rand(2, 3, 64, 128))
    assert mean.shape == log_variance.shape == (2, 4, 8, 16)
    z = to_symbols(mean)
    assert LatentDecoder()(from_symbols(z, torch.full(z.shape, 0.1), (4, 8, 16))).shape == (2, 3, 64, 128)


# Steps, batch size and the loss it must fall below (a fraction of the initial one), per model; the rest 40
# steps of 8, to 0.8. The diffusion UNet's falls fast (measured 0.65 after 20 steps of 4), and each of its steps
# is the costliest; photo_vae's too (0.70 after 20 steps of 8, Intel Xeon with AMX). latent_diffusion and
# deep_jscc are compared on fixed batches, below; the two students learn from a teacher store
# (tests/test_distillation.py and tests/test_encoder_student.py build tiny ones). segmenter_large is the
# segmenter's spec at twice the width: the segmenter's run trains the same code 4x faster.
SHORT_RUNS = {"diffusion": (20, 4, 0.8), "photo_vae": (20, 8, 0.8)}
NOT_HERE = ("latent_diffusion", "deep_jscc", "diffusion_student", "encoder_student", "segmenter_large")


@pytest.mark.parametrize("model", [model for model in MODELS if model not in NOT_HERE])
def test_a_short_training_run_lowers_the_loss_and_ships_a_card(model, tmp_path):
    steps, batch_size, fraction = SHORT_RUNS.get(model, (40, 8, 0.8))
    # val_count: 2 Kodak images validate the photo models (at their own size, the costliest part of a short run)
    config = TrainConfig(steps=steps, batch_size=batch_size, train_count=48, val_count=2, checkpoint_every=20,
                         checkpoint_dir=tmp_path / "checkpoints", weights_dir=tmp_path / "weights", bf16=False)
    card = train(model, config)
    assert card["training"]["final_loss"] < fraction * card["training"]["initial_loss"]
    assert (tmp_path / "weights" / f"{model}.pt").is_file() and (tmp_path / "checkpoints" / f"{model}.ckpt").is_file()
    assert card["sha256"] and card["training"]["steps"] == steps and card["evaluation"]["metrics"]


def test_training_resumes_from_its_checkpoint(tmp_path, capsys):
    base = dict(batch_size=4, train_count=16, val_count=4, checkpoint_every=5, checkpoint_dir=tmp_path / "ck",
                weights_dir=tmp_path / "w", bf16=False)
    train("map_codec", TrainConfig(steps=5, **base))
    capsys.readouterr()
    resumed = train("map_codec", TrainConfig(steps=10, resume=True, **base))
    assert "resumed map_codec from" in capsys.readouterr().err  # continued at step 5, not restarted
    state = torch.load(tmp_path / "ck" / "map_codec.ckpt", weights_only=False)
    assert state["step"] == 10 and resumed["training"]["steps"] == 10


def test_an_interrupted_run_keeps_its_steps_and_another_architecture_is_refused(tmp_path, monkeypatch):
    from semcom.tools.training.specs import spec

    base = dict(batch_size=2, train_count=8, val_count=2, checkpoint_every=100, checkpoint_dir=tmp_path / "ck",
                weights_dir=tmp_path / "w", bf16=False)
    map_codec, calls = spec("map_codec"), []
    real_loss = map_codec.loss

    def interrupted_at_the_fourth_step(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # Ctrl-C, or device_session.sh's time limit
        return real_loss(*args)

    monkeypatch.setattr(map_codec, "loss", interrupted_at_the_fourth_step)
    with pytest.raises(KeyboardInterrupt):
        train("map_codec", TrainConfig(steps=10, **base))
    assert torch.load(tmp_path / "ck" / "map_codec.ckpt", weights_only=False)["step"] == 3  # before any checkpoint
    monkeypatch.undo()
    with pytest.raises(ValueError, match="--resume: .* this run asks for"):
        train("map_codec", TrainConfig(steps=10, channels=2, resume=True, **base))
    train("map_codec", TrainConfig(steps=4, resume=True, **base))  # the same flags resume
    with pytest.raises(ValueError, match="--init-from .* is not this run's"):
        train("map_codec", TrainConfig(steps=1, channels=2, init_from=tmp_path / "w" / "map_codec.pt",
                                       **{**base, "checkpoint_dir": tmp_path / "other"}))


def test_codec_bandwidth_is_configurable_at_training(tmp_path):
    config = TrainConfig(steps=3, channels=2, batch_size=4, train_count=8, val_count=4, checkpoint_every=3,
                         checkpoint_dir=tmp_path / "ck", weights_dir=tmp_path / "w", bf16=False)
    card = train("latent_codec", config)
    assert {spec["kwargs"]["channels"] for spec in card["architecture"].values()} == {2}
    mean, _ = LatentEncoder(channels=2)(torch.rand(1, 3, 64, 128))
    assert to_symbols(mean).shape == (1, 128)  # 2 x 8 x 16 / 2 complex uses
    with pytest.raises(ValueError, match="applies to the fixed-bandwidth codecs"):
        train("segmenter", TrainConfig(steps=1, channels=2, weights_dir=tmp_path / "w"))


def test_the_diffusion_objective_reaches_the_card_and_the_receiver_turns_a_velocity_into_noise(tmp_path):
    import numpy as np

    from semcom.common.models.runtime import DecoderRuntime
    from semcom.common.models.sampling import CosineSchedule, noise_from

    with pytest.raises(ValueError, match="--objective applies to diffusion"):
        train("map_codec", TrainConfig(steps=1, objective="v", weights_dir=tmp_path / "w"))
    config = TrainConfig(steps=2, batch_size=2, train_count=4, val_count=2, checkpoint_every=2, objective="v",
                         checkpoint_dir=tmp_path / "ck", weights_dir=tmp_path / "w", bf16=False)
    card = train("diffusion", config)
    assert card["architecture"]["net"]["kwargs"]["prediction"] == "v"
    metrics = set(card["evaluation"]["metrics"])
    assert {"miou_gesco_awgn_10db", "miou_map_awgn_10db", "psnr_db_semantic_awgn_0db"} <= metrics
    runtime = DecoderRuntime(weights_dir=tmp_path / "w")
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((2, 3, 16, 32), dtype=np.float32), np.array([10, 900])
    condition = rng.random((2, 22, 16, 32), dtype=np.float32)
    velocity = runtime.torch_function(store.load("diffusion", tmp_path / "w")["net"])(x, t, condition)
    alpha_bar = CosineSchedule().alpha_bar[t].reshape(-1, 1, 1, 1)
    assert np.allclose(runtime.noise_predictor()(x, t, condition), noise_from("v", velocity, x, alpha_bar), atol=1e-5)
    assert not np.allclose(velocity, noise_from("v", velocity, x, alpha_bar))


def test_the_receivers_numpy_decoder_input_is_the_layout_training_uses():
    """The receiver builds decoder inputs in numpy (no torch in an int8 receiver); training with
    jscc.from_symbols. A decoder only works if the two agree, value for value."""
    import numpy as np

    from semcom.common.codecs.learned import received_planes
    from semcom.common.wire.frames import Frame, SymbolBlock

    rng = np.random.default_rng(0)
    symbols = (rng.standard_normal(1024) + 1j * rng.standard_normal(1024)).astype(np.complex64)
    error = rng.uniform(0.001, 2.0, 1024).astype(np.float32)
    error[:3] = np.inf  # erasures
    frame = Frame(frame_id="f", codec="semantic_map", codec_version=1, height=64, width=128,
                  blocks=[SymbolBlock("semantic_map", symbols, noise_variance=error, mmse=True)])
    planes = received_planes(frame, "semantic_map", (4, 16, 32), "semantic_map")
    expected = from_symbols(torch.from_numpy(symbols)[None], torch.from_numpy(error)[None], (4, 16, 32))
    assert planes.dtype == np.float32
    np.testing.assert_allclose(planes, expected.numpy(), rtol=1e-6, atol=1e-6)


def test_the_gesco_receivers_numpy_pooling_is_q_gescos_torch_pooling():
    import numpy as np
    from torch.nn import functional as F

    from semcom.common.codecs.generative import _average_pool3, _max_pool3

    planes = np.random.default_rng(1).standard_normal((1, 5, 9, 13)).astype(np.float32)
    expected = F.max_pool2d(F.avg_pool2d(torch.from_numpy(planes), 3, 1, 1), 3, 1, 1).numpy()
    np.testing.assert_allclose(_max_pool3(_average_pool3(planes)), expected, rtol=1e-5, atol=1e-6)


def test_the_ema_starts_at_the_initial_weights_warms_up_and_resumes_an_old_checkpoint():
    from torch import nn

    from semcom.tools.training.loop import _averaged, _load_ema

    modules = nn.ModuleDict({"net": nn.Linear(2, 2)})
    initial = modules.state_dict()["net.weight"].clone()
    ema = _averaged(modules, decay=0.9)
    torch.testing.assert_close(ema.module["net"].weight, initial)
    with torch.no_grad():
        modules["net"].weight.add_(1.0)
    ema.update_parameters(modules)
    # The first update's decay is the warm-up's (1 + 1) / (10 + 1), not 0.9: the start is mostly forgotten.
    torch.testing.assert_close(ema.module["net"].weight, initial + 9 / 11)
    for _ in range(100):
        ema.update_parameters(modules)
    with torch.no_grad():
        modules["net"].weight.add_(1.0)
    before = ema.module["net"].weight.clone()
    ema.update_parameters(modules)
    torch.testing.assert_close(ema.module["net"].weight, before + 0.1 * (initial + 2 - before))  # decay 0.9 now
    fresh = _averaged(nn.ModuleDict({"net": nn.Linear(2, 2)}), decay=0.9)
    _load_ema(fresh, ema.module.state_dict(), step=102)  # the format checkpoints had before AveragedModel
    torch.testing.assert_close(fresh.module["net"].weight, ema.module["net"].weight)
    with pytest.raises(ValueError, match="integer buffers"):
        _averaged(nn.ModuleDict({"net": nn.BatchNorm2d(2)}), decay=0.9)


def test_the_photo_codec_networks_run_at_any_size_and_send_the_first_maps_alone():
    from semcom.common.models.diffusion import SemanticDiffusionUNet
    from semcom.common.models.jscc import erase_unsent
    from semcom.common.models.photo_latent import (
        LatentDownsampler, LatentUpsamplingHead, PhotoVAEDecoder, PhotoVAEEncoder,
    )

    image = torch.rand(2, 3, 40, 56)  # not square, multiples of 8 only
    mean, log_variance = PhotoVAEEncoder()(image)
    assert mean.shape == log_variance.shape == (2, 8, 10, 14)
    assert PhotoVAEDecoder()(mean).shape == image.shape
    features = LatentDownsampler()(mean)
    assert features.shape == (2, 8, 5, 7)  # 8 maps at 1/8: k/n = 8/384 = 1/48
    received = from_symbols(to_symbols(features[:, :4]), torch.full((2, 70), 0.1), (4, 5, 7))
    estimate, estimate_log_variance = LatentUpsamplingHead()(erase_unsent(received, 8))  # 1/96: half the maps
    assert estimate.shape == estimate_log_variance.shape == mean.shape
    unet = SemanticDiffusionUNet(num_classes=0, widths=(16, 32), in_channels=8, condition_channels=16, prediction="v")
    assert unet(mean, torch.tensor([3, 900]), torch.cat([estimate, estimate_log_variance], 1)).shape == mean.shape


def test_the_latent_codec_starts_denoising_where_the_diffusion_noise_matches_the_heads_variance():
    import numpy as np

    from semcom.common.codecs.latent_diffusion import start_timestep
    from semcom.common.models.sampling import CosineSchedule

    schedule = CosineSchedule()
    for variance in (1.0, 0.1, 0.01):  # posterior variance of the unit-variance latent: SNR 0, 10, 20 dB
        t = start_timestep(schedule, np.full((1, 8, 4, 4), np.log(variance), np.float32))
        snr_db = 10 * np.log10(schedule.alpha_bar[t] / (1 - schedule.alpha_bar[t]))
        assert abs(snr_db + 10 * np.log10(variance)) < 0.2
    assert start_timestep(schedule, np.log(np.full((1, 1, 1, 1), 0.01))) < start_timestep(schedule, np.zeros((1, 1, 1, 1)))


def fixed_batch_loss(model: str, parts, images: torch.Tensor, batches: int = 6) -> float:
    """The mean of `model`'s training loss on `images` over `batches` fixed draws (seeds 0..): the same bandwidth,
    channel draw and noise for every network compared. A running value the loss updates (latent_diffusion's
    latent scale) is put back before each draw."""
    from semcom.tools.training.channel_in_the_loop import ChannelInTheLoop
    from semcom.tools.training.specs import spec

    running = {name: part.latent_scale.clone() for name, part in parts.items() if hasattr(part, "latent_scale")}
    losses = []
    for seed in range(batches):
        for name, value in running.items():
            parts[name].latent_scale.copy_(value)
        torch.manual_seed(seed)
        with torch.no_grad():
            losses.append(float(spec(model).loss(parts, images, None, ChannelInTheLoop(seed=seed))))
    return float(np.mean(losses))


# Both draw the bandwidth per batch, whose effect on the loss is larger than a short run's progress, so the
# untrained and the trained networks are compared on the same fixed batches instead. latent_diffusion (2 to 8
# maps), measured means of the first and last 10 steps: 0.80 -> 0.78 after 80 steps of 4, 0.78 -> 0.68 after 40.
# deep_jscc (2 to 64 maps): 0.87 of the initial loss after 80 steps of 8, where the fixed batches say 0.76 after
# 40 (Intel Xeon with AMX), in a third of the time.
FIXED_BATCH_RUNS = {"latent_diffusion": (40, 4, 0.95), "deep_jscc": (40, 8, 0.9)}


@pytest.mark.parametrize("model", FIXED_BATCH_RUNS)
def test_a_short_run_lowers_the_loss_on_fixed_batches_and_ships_a_card(model, tmp_path):
    from semcom.tools.training.data import as_tensors
    from semcom.tools.training.specs import spec

    steps, batch_size, fraction = FIXED_BATCH_RUNS[model]
    scenes, _ = materialize(SyntheticScenes("val", 4, (64, 64)))
    images = as_tensors(scenes, np.zeros(scenes.shape[:3], np.uint8))[0]
    torch.manual_seed(0)
    untrained = {name: part.eval() for name, part in store.build(spec(model).architecture).items()}
    before = fixed_batch_loss(model, untrained, images)
    config = TrainConfig(steps=steps, batch_size=batch_size, train_count=48, val_count=1, checkpoint_every=20,
                         checkpoint_dir=tmp_path / "checkpoints", weights_dir=tmp_path / "weights", bf16=False)
    card = train(model, config)
    after = fixed_batch_loss(model, store.load(model, tmp_path / "weights"), images)
    # measured 0.833 -> 0.736 (latent_diffusion) and 0.038 -> 0.029 (deep_jscc), Intel Xeon with AMX
    assert after < fraction * before, (before, after)
    assert (tmp_path / "checkpoints" / f"{model}.ckpt").is_file()
    assert card["sha256"] and card["training"]["steps"] == steps and card["evaluation"]["metrics"]
    if model == "latent_diffusion":
        assert card["training"]["trained_on"] == {"photo_vae": store.card("photo_vae")["sha256"]}  # its VAE

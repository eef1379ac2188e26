"""The latent codec (VAE-style): the image's coarse latent, its mean sent through the channel."""

from torch.nn import functional as F

from ..spec import Spec, codec_flops, image_codec_eval

KL_WEIGHT = 1e-3


def loss(parts, images, labels, channel):
    mean, log_variance = parts["encoder"](images)
    reconstruction = parts["decoder"](channel.features(mean))
    kl = 0.5 * (mean.float() ** 2 + log_variance.float().exp() - 1 - log_variance.float()).mean()
    return F.mse_loss(reconstruction.float(), images) + KL_WEIGHT * kl


def encode(parts, images):
    return parts["encoder"](images)[0]


SPEC = Spec({"encoder": {"class": "LatentEncoder", "kwargs": {"channels": 4}},
             "decoder": {"class": "LatentDecoder", "kwargs": {"channels": 4}}},
            loss, image_codec_eval(encode), lambda parts, image: codec_flops(parts, image, encode(parts, image)),
            default_steps=3000)

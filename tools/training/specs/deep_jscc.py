"""Deep JSCC (Bourtsoulatze, Kurka, Gündüz 2019): an image autoencoder trained through the channel."""

from torch.nn import functional as F

from ..spec import Spec, codec_flops, image_codec_eval


def loss(parts, images, labels, channel):
    reconstruction = parts["decoder"](channel.features(parts["encoder"](images)))
    return F.mse_loss(reconstruction.float(), images)


def encode(parts, images):
    return parts["encoder"](images)


SPEC = Spec({"encoder": {"class": "ImageEncoder", "kwargs": {"channels": 5}},
             "decoder": {"class": "ImageDecoder", "kwargs": {"channels": 5}}},
            loss, image_codec_eval(encode), lambda parts, image: codec_flops(parts, image, encode(parts, image)),
            default_steps=4000)

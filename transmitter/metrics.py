from prometheus_client import CollectorRegistry, Counter, Histogram

from semcom.common.serving.metrics import (
    BANDWIDTH_RATIO_BUCKETS, CHANNEL_USES_BUCKETS, LATENCY_SECONDS_BUCKETS, PSNR_DECIBELS_BUCKETS, RATIO_BUCKETS,
)


class TransmitterMetrics:
    def __init__(self, registry: CollectorRegistry):
        def histogram(name, help, buckets):
            return Histogram(name, help, ["codec"], buckets=buckets, registry=registry)

        self.encode_seconds = histogram(
            "semcom_transmitter_encode_seconds", "Time to decode the image file and encode it into symbols.",
            LATENCY_SECONDS_BUCKETS,
        )
        self.end_to_end_seconds = histogram(
            "semcom_transmitter_end_to_end_seconds", "Whole Transmit call: encode, channel, decode and quality.",
            LATENCY_SECONDS_BUCKETS,
        )
        self.channel_uses = histogram(
            "semcom_transmitter_channel_uses", "Complex channel uses (symbols) sent per image.", CHANNEL_USES_BUCKETS
        )
        self.bandwidth_ratio = histogram(
            "semcom_transmitter_bandwidth_ratio",
            "Complex channel uses per source real value (k/n) per image.", BANDWIDTH_RATIO_BUCKETS,
        )
        self.psnr = histogram(
            "semcom_transmitter_psnr_decibels", "PSNR of the reconstruction against the original, in dB.",
            PSNR_DECIBELS_BUCKETS,
        )
        self.ssim = histogram(
            "semcom_transmitter_ssim_ratio", "SSIM of the reconstruction against the original.", RATIO_BUCKETS
        )
        self.out_of_domain = Counter(
            "semcom_transmitter_out_of_domain_total",
            "Images out of the asked semantic codec's domain, by what the transmitter did: fallback or refuse.",
            ["codec", "action"], registry=registry)
        self.miou = histogram(
            "semcom_transmitter_miou_ratio",
            "mIoU of the segmenter on the reconstruction against its map of the original.", RATIO_BUCKETS,
        )

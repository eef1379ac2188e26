from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from semcom.common.metrics import LATENCY_SECONDS_BUCKETS, SNR_DECIBELS_BUCKETS


class ChannelMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.configured_snr = Gauge(
            "semcom_channel_configured_snr_decibels", "Configured channel SNR, Es/N0 in dB.", registry=registry
        )
        self.measured_snr = Histogram(
            "semcom_channel_measured_snr_decibels", "SNR measured per frame from the noise actually added, in dB.",
            ["model"], buckets=SNR_DECIBELS_BUCKETS, registry=registry,
        )
        self.symbols = Counter(
            "semcom_channel_symbols", "Complex channel uses passed through the channel.", ["model"], registry=registry
        )
        self.frames = Counter(
            "semcom_channel_frames", "Frames passed through the channel.", ["model"], registry=registry
        )
        self.apply_seconds = Histogram(
            "semcom_channel_apply_seconds", "Time to apply the channel to one frame.",
            ["model"], buckets=LATENCY_SECONDS_BUCKETS, registry=registry,
        )
        self.model_info = Gauge(
            "semcom_channel_model_info", "The configured channel model (value 1).", ["model"], registry=registry
        )

    def show_config(self, model: str, snr_db: float) -> None:
        self.configured_snr.set(snr_db)
        self.model_info.clear()
        self.model_info.labels(model).set(1)

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from semcom.common.serving.metrics import LATENCY_SECONDS_BUCKETS, SNR_DECIBELS_BUCKETS

# |h|^2 spans deep fades (Rayleigh: P(|h|^2 < 0.01) = 1%) to strong line of sight.
FADING_GAIN_BUCKETS = (0.001, 0.01, 0.03, 0.1, 0.2, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)


class ChannelMetrics:
    def __init__(self, registry: CollectorRegistry):
        def by_model(kind, name, help, **kwargs):
            return kind(name, help, ["model"], registry=registry, **kwargs)

        self.configured_snr = Gauge(
            "semcom_channel_configured_snr_decibels", "Configured channel SNR, Es/N0 in dB.", registry=registry
        )
        self.k_factor = Gauge(
            "semcom_channel_k_factor_ratio", "Configured Rician K factor (linear; 0 for Rayleigh and AWGN).",
            registry=registry,
        )
        self.model_info = Gauge(
            "semcom_channel_model_info", "The configured channel (value 1).", ["model", "csi", "equalizer"],
            registry=registry,
        )
        self.measured_snr = by_model(
            Histogram, "semcom_channel_measured_snr_decibels",
            "SNR measured per frame from the noise actually added, in dB.", buckets=SNR_DECIBELS_BUCKETS,
        )
        self.fading_gain = by_model(
            Histogram, "semcom_channel_fading_gain_ratio", "Fading power gain |h|^2 per coherence block.",
            buckets=FADING_GAIN_BUCKETS,
        )
        self.symbols = by_model(Counter, "semcom_channel_symbols", "Complex channel uses passed through the channel.")
        self.frames = by_model(Counter, "semcom_channel_frames", "Frames passed through the channel.")
        self.truncated = by_model(
            Counter, "semcom_channel_frames_truncated", "Frames cut to the bandwidth budget (over_budget=truncate)."
        )
        self.rejected = Counter(
            "semcom_channel_frames_rejected",
            "Frames refused: over the bandwidth budget, the link queue full, or not deliverable within the call's "
            "deadline.",
            ["reason"], registry=registry,
        )
        self.lost = Counter("semcom_channel_frames_lost", "Frames lost (erased) on the link.", registry=registry)
        self.apply_seconds = by_model(
            Histogram, "semcom_channel_apply_seconds", "Time to apply the channel model to one frame.",
            buckets=LATENCY_SECONDS_BUCKETS,
        )
        self.queue_seconds = Histogram(
            "semcom_channel_queue_seconds", "Time frames waited for the link.", buckets=LATENCY_SECONDS_BUCKETS,
            registry=registry,
        )
        self.link_busy = Gauge(
            "semcom_channel_link_busy_seconds",
            "How long the link stays busy with the frames booked, when a frame was last booked or delivered "
            "(a saturated link: high and rising).", registry=registry,
        )
        self.link_seconds = Histogram(
            "semcom_channel_link_seconds", "Queueing, transmission and propagation time per frame on the link.",
            buckets=LATENCY_SECONDS_BUCKETS, registry=registry,
        )

    def show_config(self, config) -> None:
        self.configured_snr.set(config.snr_db)
        self.k_factor.set(config.k_factor if config.model == "rician" else 0.0)
        self.model_info.clear()
        self.model_info.labels(config.model, config.csi, config.equalizer).set(1)

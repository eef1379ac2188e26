from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from semcom.common.serving.metrics import LATENCY_SECONDS_BUCKETS


class ReceiverMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.decode_seconds = Histogram(
            "semcom_receiver_decode_seconds", "Time to decode one frame into an image (its whole batch's time).",
            ["codec"], buckets=LATENCY_SECONDS_BUCKETS, registry=registry,
        )
        self.frames = Counter(
            "semcom_receiver_frames", "Frames decoded successfully.", ["codec"], registry=registry
        )
        self.queue_seconds = Histogram(
            "semcom_receiver_queue_seconds", "Time from a Decode call's arrival to the start of its batch.",
            buckets=LATENCY_SECONDS_BUCKETS, registry=registry,
        )
        self.batch_size = Histogram(
            "semcom_receiver_batch_size", "Frames decoded together in one batch (dynamic batching).",
            buckets=(1, 2, 4, 8, 16, 32), registry=registry,
        )
        self.adapter_frames = Counter(
            "semcom_receiver_adapter_frames", "Adapted frames decoded (transmitter --adapters), per adapted model "
            "and the expert its gate weighted most.", ["codec", "model", "expert"], registry=registry,
        )
        self.erasures = Counter(
            "semcom_receiver_erasures", "Frames that arrived erased (lost on the link).", registry=registry
        )
        self.model_info = Gauge(
            "semcom_receiver_model_info",
            "Loaded codecs and models (value 1): version, precision, the CPU's ISA and native bf16 "
            "(the precision auto chooses by), and the diffusion decoder a generative codec runs (--decoder: "
            "diffusion, or its distilled student diffusion_student; empty for the others).",
            ["codec", "codec_version", "precision", "cpu_isa", "native_bf16", "decoder"], registry=registry,
        )

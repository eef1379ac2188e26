"""Writes deploy/grafana/dashboards/semcom.json, the semcom Grafana dashboard, and the same
dashboard as a Kubernetes ConfigMap (deploy/kubernetes/base/grafana-dashboard.yaml, labelled for
Grafana's dashboard sidecar).

Panels are declared here rather than edited as JSON; run this after changing
them (tests/test_deploy.py fails when either file is stale, and checks every
expression against a real Prometheus and the services' live metrics).
"""

import json
from pathlib import Path

DATASOURCE = {"type": "prometheus", "uid": "semcom-prometheus"}
OUT = Path(__file__).resolve().parent / "dashboards" / "semcom.json"
CONFIGMAP_OUT = Path(__file__).resolve().parents[1] / "kubernetes" / "base" / "grafana-dashboard.yaml"


def mean(metric: str, by: str = "codec") -> str:
    """Mean of a histogram's observations over the last minute."""
    return f"sum by ({by}) (rate({metric}_sum[1m])) / sum by ({by}) (rate({metric}_count[1m]))"


def quantile(q: float, metric: str, by: str = "") -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[1m])))"


def panel(title: str, targets: list[tuple[str, str]], unit: str, x: int, y: int, w: int = 12, h: int = 8,
          kind: str = "timeseries", right_axis: str | None = None, description: str = "") -> dict:
    overrides = []
    if right_axis:
        overrides.append({"matcher": {"id": "byName", "options": right_axis},
                          "properties": [{"id": "custom.axisPlacement", "value": "right"},
                                         {"id": "unit", "value": "dB"}]})
    return {
        "type": kind, "title": title, "description": description, "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": overrides},
        "targets": [{"refId": chr(65 + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(targets)],
    }


CONFIGURED_SNR = ("max(semcom_channel_configured_snr_decibels)", "configured SNR")

PANELS = [
    panel("PSNR and configured SNR", [(mean("semcom_transmitter_psnr_decibels"), "PSNR {{codec}}"), CONFIGURED_SNR],
          "dB", 0, 0, right_axis="configured SNR",
          description="Mean PSNR of the reconstructions per codec, against the channel's configured SNR."),
    panel("SSIM and mIoU", [(mean("semcom_transmitter_ssim_ratio"), "SSIM {{codec}}"),
                            (mean("semcom_transmitter_miou_ratio"), "mIoU {{codec}}")], "percentunit", 12, 0,
          description="mIoU: the segmenter on the reconstruction against its map of the original."),
    panel("End-to-end latency", [(quantile(q, "semcom_transmitter_end_to_end_seconds"), f"p{int(q * 100)}")
                                 for q in (0.5, 0.95, 0.99)], "s", 0, 8),
    panel("Latency per stage (p95)", [
        (quantile(0.95, "semcom_transmitter_encode_seconds"), "encode"),
        (quantile(0.95, "semcom_channel_apply_seconds"), "channel"),
        (quantile(0.95, "semcom_channel_link_seconds"), "link (queue, transmission, propagation)"),
        (quantile(0.95, "semcom_receiver_decode_seconds"), "decode"),
        (quantile(0.95, "grpc_server_handling_seconds", by="grpc_service"), "handling {{grpc_service}}"),
    ], "s", 12, 8),
    panel("Throughput", [("sum(rate(grpc_server_handled_total{grpc_service=\"semcom.v1.Transmitter\","
                          "grpc_code=\"OK\"}[1m]))", "images/s")], "reqps", 0, 16),
    panel("Errors by gRPC code", [("sum by (job, grpc_code) (rate(grpc_server_handled_total{grpc_code!=\"OK\"}[1m]))",
                                   "{{job}} {{grpc_code}}")], "reqps", 12, 16),
    panel("Channel SNR: configured and measured", [
        CONFIGURED_SNR, (mean("semcom_channel_measured_snr_decibels", by="model"), "measured {{model}}")], "dB", 0, 24),
    panel("Channel: fading gain and lost or refused frames", [
        (mean("semcom_channel_fading_gain_ratio", by="model"), "mean |h|² {{model}}"),
        ("sum(rate(semcom_channel_frames_lost_total[1m]))", "lost/s"),
        ("sum by (reason) (rate(semcom_channel_frames_rejected_total[1m]))", "refused/s {{reason}}"),
    ], "short", 12, 24),
    panel("Receiver queue time", [(quantile(q, "semcom_receiver_queue_seconds"), f"p{int(q * 100)}")
                                  for q in (0.5, 0.95)] + [(quantile(0.95, "semcom_channel_queue_seconds"),
                                                           "link queue p95")], "s", 0, 32),
    panel("Receiver batch size and precision", [
        ("sum(rate(semcom_receiver_batch_size_sum[1m])) / sum(rate(semcom_receiver_batch_size_count[1m]))",
         "mean batch size"),
        ("semcom_receiver_model_info", "{{codec}} v{{codec_version}} {{precision}} on {{cpu_isa}} {{decoder}}"),
    ], "short", 12, 32),
    panel("Receiver pool: decode calls per receiver", [
        ("sum by (backend, grpc_code) (rate(semcom_channel_backend_calls_total[1m]))", "{{backend}} {{grpc_code}}"),
    ], "reqps", 0, 40, w=24,
        description="The channel emulator's Decode calls by the receiver that answered (its --node-name); "
                    "a receiver that leaves the pool stops getting calls."),
]

DASHBOARD = {
    "uid": "semcom-overview", "title": "semcom", "tags": ["semcom"], "timezone": "browser", "schemaVersion": 39,
    "refresh": "5s", "time": {"from": "now-15m", "to": "now"}, "editable": True, "panels": PANELS,
}


def render() -> str:
    return json.dumps(DASHBOARD, indent=2, ensure_ascii=False) + "\n"


def render_configmap() -> str:
    """The dashboard in a ConfigMap; written by hand rather than by a YAML library so that this script
    needs none (the JSON goes in a literal block, every line indented)."""
    body = "".join(f"    {line}\n" if line else "\n" for line in render().splitlines())
    return ("# Generated by deploy/grafana/make_dashboard.py: edit the panels there.\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: semcom-grafana-dashboard\n"
            "  labels:\n    grafana_dashboard: \"1\"\ndata:\n  semcom.json: |\n" + body)


if __name__ == "__main__":
    OUT.write_text(render())
    CONFIGMAP_OUT.write_text(render_configmap())
    print(OUT, CONFIGMAP_OUT)

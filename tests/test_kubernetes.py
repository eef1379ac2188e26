"""The Kubernetes manifests, offline: the demo overlay rendered with kustomize's semantics
(tools/kubernetes.py) and every object validated against the Kubernetes schemas that the
kubernetes-validate package ships; then what the deployment needs is checked by name: gRPC
probes on each service's plaintext health port, the receivers' headless Service and their
autoscaler, the TLS secret from `semcom certs` wired into each pod, scrape annotations, the
dashboard ConfigMap."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from semcom.tools import kubernetes
from semcom.tools.certs import make_certificates

pytestmark = pytest.mark.deploy

KUBERNETES = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
SERVICES = {"transmitter": 50051, "channel": 50052, "receiver": 50053}


@pytest.fixture(scope="module")
def overlays(tmp_path_factory) -> Path:
    """A copy of the overlays whose demo holds certificates made by `semcom certs`."""
    copy = tmp_path_factory.mktemp("kubernetes") / "kubernetes"
    shutil.copytree(KUBERNETES, copy, ignore=shutil.ignore_patterns("certs"))
    make_certificates(copy / "overlays" / "demo" / "certs")
    return copy / "overlays"


@pytest.fixture(scope="module")
def rendered(overlays) -> list[dict]:
    return kubernetes.render(overlays / "demo")


def find(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = [item for item in objects if item["kind"] == kind and item["metadata"]["name"] == name]
    return found


def env(container: dict) -> dict[str, object]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def test_every_rendered_object_validates_against_the_kubernetes_schemas(rendered, overlays):
    assert kubernetes.validate(rendered) == []
    assert kubernetes.validate(kubernetes.render(overlays / "queue-autoscaling")) == []
    kinds = sorted({item["kind"] for item in rendered})
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Namespace", "Secret", "Service"]


def test_the_validator_is_not_a_rubber_stamp(rendered):
    broken = [dict(find(rendered, "Deployment", "receiver"))]
    broken[0] = {**broken[0], "spec": {**broken[0]["spec"], "replicas": "three"}}
    (problem,) = kubernetes.validate(broken)
    assert "Deployment/receiver" in problem and "replicas" in problem
    typo = {**find(rendered, "Service", "receiver"), "spce": {}}
    assert kubernetes.validate([typo])  # strict: an unknown field is an error


def test_the_overlay_sets_namespace_the_receivers_floor_and_image(rendered):
    for item in rendered:
        if item["kind"] != "Namespace":  # the overlay's own objects: outside the base's labels
            assert item["metadata"]["namespace"] == "semcom-demo", item["metadata"]["name"]
            assert item["kind"] == "Secret" or item["metadata"]["labels"]["app.kubernetes.io/part-of"] == "semcom"
    assert "replicas" not in find(rendered, "Deployment", "receiver")["spec"]  # the autoscaler owns the count
    assert find(rendered, "HorizontalPodAutoscaler", "receiver")["spec"]["minReplicas"] == 3
    for container in (item["spec"]["template"]["spec"]["containers"][0] for item in rendered
                      if item["kind"] == "Deployment"):
        assert container["image"] == "semcom:latest" and container["imagePullPolicy"] == "IfNotPresent"
        assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    channel = find(rendered, "Deployment", "channel")["spec"]["template"]["spec"]["containers"][0]
    assert env(channel)["SEMCOM_DELAY_SECONDS"] == "0.005" and env(channel)["SEMCOM_SNR_DB"] == "10"  # patched, kept


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_grpc_probes_tls_and_scrape_annotations(rendered, name):
    deployment = find(rendered, "Deployment", name)
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    variables = env(container)
    health_port = int(variables["SEMCOM_HEALTH_PORT"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": health_port}  # kubelet's native gRPC probe, plaintext
    assert variables["SEMCOM_PORT"] == str(SERVICES[name])
    assert {variables[f"SEMCOM_TLS_{part}"] for part in ("CERT", "KEY", "CA")} == {
        f"/certs/{name}.pem", f"/certs/{name}-key.pem", "/certs/ca.pem"}
    (volume,) = pod["spec"]["volumes"]
    assert volume["secret"]["secretName"] == "semcom-tls"
    assert {item["key"] for item in volume["secret"]["items"]} == {"ca.pem", f"{name}.pem", f"{name}-key.pem"}
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == variables["SEMCOM_METRICS_PORT"]
    assert variables["SEMCOM_NODE_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_the_tls_secret_holds_the_services_certificates_and_no_other_key(rendered):
    secret = find(rendered, "Secret", "semcom-tls")
    assert sorted(secret["data"]) == sorted(["ca.pem", *(f"{name}{part}.pem" for name in SERVICES
                                                           for part in ("", "-key"))])  # no CA or client key
    certificate = base64.b64decode(secret["data"]["receiver.pem"])
    assert certificate.startswith(b"-----BEGIN CERTIFICATE-----")


def test_the_receivers_are_a_headless_pool_with_an_autoscaler(rendered, overlays):
    service = find(rendered, "Service", "receiver")
    assert service["spec"]["clusterIP"] == "None"
    channel = find(rendered, "Deployment", "channel")["spec"]["template"]["spec"]["containers"][0]
    assert env(channel)["SEMCOM_RECEIVER"] == f"receiver:{SERVICES['receiver']}"  # the headless name: every pod
    autoscaler = find(rendered, "HorizontalPodAutoscaler", "receiver")
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "receiver"
    assert [item["resource"]["name"] for item in autoscaler["spec"]["metrics"]] == ["cpu"]  # readable everywhere
    queued = find(kubernetes.render(overlays / "queue-autoscaling"), "HorizontalPodAutoscaler", "receiver")
    metrics = {item["type"]: item for item in queued["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Pods"]["pods"]["metric"]["name"] == "semcom_receiver_queue_seconds_mean"
    assert queued["spec"]["minReplicas"] == 3  # the demo's, kept
    rules = (KUBERNETES / "prometheus-adapter-rules.yaml").read_text()
    assert "semcom_receiver_queue_seconds_mean" in rules
    receiver = find(rendered, "Deployment", "receiver")["spec"]["template"]["spec"]
    grace = int(env(receiver["containers"][0])["SEMCOM_GRACE_SECONDS"])
    assert receiver["terminationGracePeriodSeconds"] > grace  # the drain ends before the kubelet's SIGKILL


def test_the_dashboard_configmap_holds_the_generated_dashboard(rendered):
    configmap = find(rendered, "ConfigMap", "semcom-grafana-dashboard")
    dashboard = (KUBERNETES.parent / "grafana" / "dashboards" / "semcom.json").read_text()
    assert configmap["data"]["semcom.json"] == dashboard
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_a_missing_certificate_is_named_with_the_command_that_makes_it(tmp_path):
    shutil.copytree(KUBERNETES, tmp_path / "kubernetes", ignore=shutil.ignore_patterns("certs"))
    with pytest.raises(kubernetes.ManifestError, match="certs/ca.pem does not exist.*semcom certs"):
        kubernetes.render(tmp_path / "kubernetes" / "overlays" / "demo")


def test_an_unsupported_kustomize_field_is_refused_by_name(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamePrefix: x-\n")
    with pytest.raises(kubernetes.ManifestError, match="namePrefix not supported"):
        kubernetes.render(tmp_path)


def test_an_unsupported_field_inside_an_entry_is_refused_too(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("images:\n  - name: semcom\n    digest: sha256:00\n")
    with pytest.raises(kubernetes.ManifestError, match="images: digest not supported"):
        kubernetes.render(tmp_path)


@pytest.mark.parametrize("image, expected", [("semcom", "r.example/semcom:v2"), ("semcom:1.0", "r.example/semcom:v2"),
                                             ("other:1", "other:1"), ("host:5000/semcom:1", "host:5000/semcom:1")])
def test_the_images_transformer_matches_by_name_with_registries_ports(tmp_path, image, expected):
    (tmp_path / "pod.yaml").write_text(f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: x}}\nspec:\n"
                                       f"  template:\n    spec:\n      containers: [{{name: x, image: '{image}'}}]\n")
    (tmp_path / "kustomization.yaml").write_text("resources: [pod.yaml]\nimages:\n  - name: semcom\n"
                                                 "    newName: r.example/semcom\n    newTag: v2\n")
    (rendered,) = kubernetes.render(tmp_path)
    assert rendered["spec"]["template"]["spec"]["containers"][0]["image"] == expected


def test_strategic_merge_merges_named_lists_and_replaces_others():
    original = {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}], "args": ["serve"]}]}
    patch = {"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}], "args": ["other"]}]}
    merged = kubernetes.strategic_merge(original, patch)
    assert merged == {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                                      "args": ["other"]}]}
    assert original["containers"][0]["args"] == ["serve"]  # the original is left alone


def test_the_command_line_renders_and_validates(rendered, tmp_path):
    shutil.copytree(KUBERNETES, tmp_path / "kubernetes", ignore=shutil.ignore_patterns("certs"))
    make_certificates(tmp_path / "kubernetes" / "overlays" / "demo" / "certs")
    demo = str(tmp_path / "kubernetes" / "overlays" / "demo")
    result = subprocess.run([sys.executable, "-m", "semcom.tools.cli", "kubernetes", "validate", demo],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"{len(rendered)} objects valid" in result.stdout
    missing = subprocess.run([sys.executable, "-m", "semcom.tools.cli", "kubernetes", "render",
                              str(KUBERNETES / "no-such-overlay")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no kustomization.yaml" in missing.stderr

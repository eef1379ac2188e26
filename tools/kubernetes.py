"""`semcom kubernetes render|validate`: the manifests under deploy/kubernetes, offline.

`render` builds a kustomization as `kubectl apply -k` would, for the subset of kustomize the
project's manifests use: resources (files and kustomization folders), namespace, labels,
images, secret and config-map generators (without name hashes) and strategic-merge patches with
a kind/name target. Any other field, at the top or inside an entry, is refused by name, so a
manifest never means something here that it would not mean to kustomize. `validate` checks
every rendered object against the Kubernetes OpenAPI schemas that the kubernetes-validate
package ships (no cluster, no network).
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path

KUSTOMIZATION = "kustomization.yaml"
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "secretGenerator",
             "configMapGenerator", "patches"}
# The fields this renderer understands inside each entry of a list field.
ENTRY_FIELDS = {"labels": {"pairs", "includeTemplates"}, "images": {"name", "newName", "newTag"},
                "secretGenerator": {"name", "files", "literals", "type", "options"},
                "configMapGenerator": {"name", "files", "literals", "options"}, "patches": {"path", "patch", "target"}}
# Objects that have no namespace (the rest get the kustomization's).
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
                  "StorageClass", "APIService", "PriorityClass", "IngressClass", "RuntimeClass",
                  "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}
DEFAULT_KUBERNETES_VERSION = "1.33"


class ManifestError(ValueError):
    """A kustomization or manifest this renderer cannot build; the message names the file."""


def _yaml():
    import yaml  # the test extra and the kubernetes extra install it

    return yaml


def _load_documents(path: Path, objects: bool = True) -> list[dict]:
    try:
        documents = [document for document in _yaml().safe_load_all(path.read_text()) if document is not None]
    except OSError as error:
        raise ManifestError(f"{path}: {error.strerror}") from None
    except _yaml().YAMLError as error:
        raise ManifestError(f"{path}: not YAML: {error}") from None
    for document in documents:
        if not isinstance(document, dict) or (objects and "kind" not in document):
            raise ManifestError(f"{path}: every document must be a Kubernetes object with a kind")
    return documents


def render(folder: Path) -> list[dict]:
    """The objects the kustomization in `folder` builds, in order."""
    folder = Path(folder)
    path = folder / KUSTOMIZATION
    if not path.is_file():
        raise ManifestError(f"{folder}: no {KUSTOMIZATION}")
    (spec,) = _load_documents(path, objects=False) or [{}]
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise ManifestError(f"{path}: {', '.join(sorted(unknown))} not supported by this renderer "
                            f"(supported: {', '.join(sorted(SUPPORTED))})")
    for field, allowed in ENTRY_FIELDS.items():
        for entry in spec.get(field, []):
            if unknown := set(entry) - allowed:
                raise ManifestError(f"{path}: {field}: {', '.join(sorted(unknown))} not supported by this renderer")
            if set(entry.get("target", {})) - {"kind", "name"}:
                raise ManifestError(f"{path}: patches: a target by kind and name only")
    objects: list[dict] = []
    for resource in spec.get("resources", []):
        target = folder / resource
        objects += render(target) if target.is_dir() else _load_documents(target)
    for generator, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
        objects += [_generate(folder, path, kind, entry) for entry in spec.get(generator, [])]
    for patch in spec.get("patches", []):
        _apply_patch(folder, path, objects, patch)
    for label in spec.get("labels", []):
        for item in objects:
            item.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
            if label.get("includeTemplates") and "template" in item.get("spec", {}):
                item["spec"]["template"].setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
    for image in spec.get("images", []):
        for container in _containers(objects):
            name, tag = _split_image(container["image"])
            if name == image["name"]:
                tag = image.get("newTag", tag)
                container["image"] = image.get("newName", name) + (f":{tag}" if tag else "")
    if "namespace" in spec:
        for item in objects:
            if item["kind"] not in CLUSTER_SCOPED:
                item["metadata"]["namespace"] = spec["namespace"]
    return objects


def _split_image(image: str) -> tuple[str, str]:
    """(name, tag) of an image reference; a registry's port (host:5000/name) is part of the name."""
    name, separator, tag = image.rpartition(":")
    return (name, tag) if separator and "/" not in tag else (image, "")


def _containers(objects: list[dict]) -> list[dict]:
    pods = [item["spec"]["template"]["spec"] for item in objects if "template" in item.get("spec", {})]
    return [container for pod in pods for key in ("initContainers", "containers") for container in pod.get(key, [])]


def _generate(folder: Path, path: Path, kind: str, entry: dict) -> dict:
    if not entry.get("options", {}).get("disableNameSuffixHash"):
        raise ManifestError(f"{path}: {entry['name']}: name suffix hashes are not supported by this renderer; "
                            "set options.disableNameSuffixHash: true")
    # A Secret's values are base64, a ConfigMap's the text itself.
    encode = (lambda content: base64.b64encode(content).decode()) if kind == "Secret" else bytes.decode
    data: dict[str, str] = {}
    for file in entry.get("files", []):
        key, _, relative = file.rpartition("=")
        source = folder / relative
        if not source.is_file():
            raise ManifestError(f"{path}: {entry['name']}: {source} does not exist"
                                + (" (make it with `semcom certs`, see the kustomization's comment)"
                                   if kind == "Secret" else ""))
        data[key or source.name] = encode(source.read_bytes())
    for literal in entry.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = encode(value.encode())
    generated = {"apiVersion": "v1", "kind": kind, "metadata": {"name": entry["name"]}, "data": data}
    if kind == "Secret":
        generated["type"] = entry.get("type", "Opaque")
    return generated


def _apply_patch(folder: Path, path: Path, objects: list[dict], patch: dict) -> None:
    if "path" in patch:
        (body,) = _load_documents(folder / patch["path"])
    else:
        body = _yaml().safe_load(patch["patch"])
    target = patch.get("target", {"kind": body["kind"], "name": body["metadata"]["name"]})
    matches = [item for item in objects if all(
        (item["metadata"]["name"] if key == "name" else item.get(key)) == value for key, value in target.items())]
    if not matches:
        raise ManifestError(f"{path}: patch target {target} matches no object")
    for item in matches:
        merged = strategic_merge(item, body)
        item.clear()
        item.update(merged)


def strategic_merge(original, patch):
    """Kubernetes' strategic merge for the shapes these manifests patch: maps merge key by key, lists of
    named maps (containers, env, volumes, volumeMounts) merge by name, other lists are replaced."""
    if isinstance(original, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(original)
        for key, value in patch.items():
            merged[key] = strategic_merge(original[key], value) if key in original else copy.deepcopy(value)
        return merged
    if isinstance(original, list) and isinstance(patch, list) and all(
            isinstance(item, dict) and "name" in item for item in original + patch):
        merged = [copy.deepcopy(item) for item in original]
        index = {item["name"]: position for position, item in enumerate(merged)}
        for item in patch:
            if item["name"] in index:
                merged[index[item["name"]]] = strategic_merge(merged[index[item["name"]]], item)
            else:
                merged.append(copy.deepcopy(item))
        return merged
    return copy.deepcopy(patch)


def validate(objects: list[dict], kubernetes_version: str = DEFAULT_KUBERNETES_VERSION) -> list[str]:
    """Problems found against the Kubernetes schemas (strict: unknown fields count); empty when valid."""
    try:
        import kubernetes_validate
    except ImportError:
        raise ManifestError("validation needs the kubernetes-validate package: pip install 'semcom[test]'") from None
    problems = []
    for item in objects:
        name = f"{item['kind']}/{item.get('metadata', {}).get('name', '?')}"
        try:
            kubernetes_validate.validate(item, kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{name}: {error.message} (at {'.'.join(str(p) for p in error.path)})")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{name}: no schema for {item['apiVersion']} {item['kind']} in Kubernetes "
                            f"{kubernetes_version}")
    return problems


def to_yaml(objects: list[dict]) -> str:
    return _yaml().safe_dump_all(objects, sort_keys=False)

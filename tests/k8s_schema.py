"""Offline validation of Kubernetes manifests: the official API schemas, and the Kubeflow TFJob CRD.

Built-in kinds (Job, Service, ConfigMap, Deployment, ...) are checked against the Kubernetes OpenAPI
schemas that ``kubernetes-validate`` ships (converted from each release's ``swagger.json``), in their
*strict* form: unknown fields are errors, as ``kubectl apply`` (``--validate=strict``) reports them.
TFJobs are checked against the ``openAPIV3Schema`` of the Kubeflow Training Operator's CRD
(``tests/schemas/kubeflow.org_tfjobs.v1.9.0.json``, see tests/schemas/README.md) made strict the way
the API server's field validation is (objects with ``properties`` accept no other field), plus the
operator's admission webhook rules, and each replica's pod template against the Kubernetes schema.
"""

from __future__ import annotations

import functools
import json
import os
import re

import jsonschema
import referencing
from kubernetes_validate import utils as kv

# The oldest Kubernetes release we support (docs/cluster.md) up to the newest one we test.
OLDEST = "1.29"
VERSIONS = ("1.29", "1.30", "1.31", "1.32", "1.33")
SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas")
TFJOB_CRD = os.path.join(SCHEMAS, "kubeflow.org_tfjobs.v1.9.0.json")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _folder(version: str) -> str:
    return f"kubernetes-json-schema/v{version}.0-local-strict"


@functools.cache
def _registry(version: str) -> referencing.Registry:
    """The release's shared definitions (``_definitions.json``), which every kind's schema references."""
    definitions = kv.schema_contents(f"{_folder(version)}/_definitions.json", version)
    return referencing.Resource.from_contents(definitions) @ referencing.Registry()


@functools.cache
def _validator(kind: str, api_version: str, version: str) -> jsonschema.Validator:
    """The strict JSON-schema validator of one built-in kind in one Kubernetes release."""
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = kv.schema_contents(f"{_folder(version)}/{kind.lower()}-{group}.json", version)
    return jsonschema.Draft202012Validator(schema, registry=_registry(version))


@functools.cache
def _definition(name: str, version: str) -> jsonschema.Validator:
    """A validator for one named API type (``io.k8s.api.core.v1.PodTemplateSpec``) of a release."""
    schema = {"$ref": f"https://kubernetes.io/api/_definitions.json#/$defs/{name}"}
    return jsonschema.Draft202012Validator(schema, registry=_registry(version))


def _strict(schema):
    """The CRD schema with unknown fields rejected (the API server's strict field validation)."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def _tfjob_validator() -> jsonschema.Validator:
    with open(TFJOB_CRD) as fh:
        return jsonschema.Draft202012Validator(_strict(json.load(fh)))


def _messages(validator: jsonschema.Validator, doc: dict, prefix: str = "") -> list[str]:
    return sorted(
        f"{prefix}{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(doc)
    )


def _tfjob_errors(doc: dict, version: str) -> list[str]:
    """CRD schema + the training operator's webhook (validateTFJob) + pod templates as PodTemplates."""
    errors = _messages(_tfjob_validator(), doc)
    meta = doc.get("metadata", {})
    object_meta = _definition("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", version)
    errors += _messages(object_meta, meta, "metadata.")
    if not _DNS1035.match(meta.get("name", "")) or len(meta.get("name", "")) > 63:
        errors.append(f"metadata.name: {meta.get('name')!r} is not a DNS-1035 label")
    specs = doc.get("spec", {}).get("tfReplicaSpecs") or {}
    if not specs:
        errors.append("spec.tfReplicaSpecs: must be required")
    if sum(role in ("Chief", "Master") for role in specs) > 1:
        errors.append("spec.tfReplicaSpecs: must not have more than 1 Chief or Master role")
    for role, replica in specs.items():
        if role not in ("Chief", "Master", "PS", "Worker", "Evaluator"):
            errors.append(f"spec.tfReplicaSpecs.{role}: unknown replica type")
        template = (replica or {}).get("template", {})
        containers = template.get("spec", {}).get("containers") or []
        if not any(c.get("name") == "tensorflow" for c in containers):
            errors.append(f"spec.tfReplicaSpecs.{role}: needs a container named tensorflow")
        if any(not c.get("image") for c in containers):
            errors.append(f"spec.tfReplicaSpecs.{role}: every container needs an image")
        errors += _messages(
            _definition("io.k8s.api.core.v1.PodTemplateSpec", version),
            template,
            f"spec.tfReplicaSpecs.{role}.template.",
        )
    return errors


def _name_errors(doc: dict) -> list[str]:
    """The API server's name rules (not in the OpenAPI schema): Services DNS-1035, others DNS-1123."""
    name = doc.get("metadata", {}).get("name", "")
    if doc.get("kind") == "Service":
        if not _DNS1035.match(name) or len(name) > 63:
            return [f"metadata.name: {name!r} is not a DNS-1035 label"]
    elif not _DNS1123.match(name) or len(name) > 253:
        return [f"metadata.name: {name!r} is not a DNS-1123 subdomain"]
    return []


def errors(doc: dict, version: str = OLDEST) -> list[str]:
    """Why the API server of Kubernetes ``version`` would reject ``doc`` (empty: it accepts it)."""
    if doc.get("apiVersion") == "kubeflow.org/v1" and doc.get("kind") == "TFJob":
        return _tfjob_errors(doc, version)
    return _messages(_validator(doc["kind"], doc["apiVersion"], version), doc) + _name_errors(doc)

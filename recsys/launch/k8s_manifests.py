"""Render a training job as Kubernetes manifests: a Kubeflow TFJob, or an Indexed Job plus a headless Service.

Both run ``recsys train`` from the trainer image on N GPU workers with a PVC mounted for data,
checkpoints and exports, and the experiment config mounted from a ConfigMap. The TFJob relies on the
training operator to set TF_CONFIG; the Indexed Job (for clusters without it) builds TF_CONFIG in each
pod from ``JOB_COMPLETION_INDEX`` and the stable pod hostnames ``<job>-<i>.<service>``.

Locked down by default: pods meet the *restricted* Pod Security Standard (non-root, no privilege
escalation, every capability dropped, seccomp ``RuntimeDefault``), do not mount a service-account
token, and a NetworkPolicy admits only the job's own pods to the worker port (TensorFlow's worker
server runs any graph it is sent, unauthenticated). A model_dir that is on no persistent volume and
is no bucket path is refused: every restart would start again from step 0 and the export would be
lost with the pod.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

KINDS = ("tfjob", "indexedjob")
CONTAINER = "tensorflow"
PORT_NAME = "tfjob-port"
CONFIG_MOUNT = "/etc/recsys"
WORKERS_ENV = "RECSYS_WORKERS"
GPU_RESOURCE = "nvidia.com/gpu"
# Indexed Job pods: TF_CONFIG from the completion index and the worker list, then exec the trainer.
TF_CONFIG_SNIPPET = (
    'export TF_CONFIG="{\\"cluster\\":{\\"worker\\":[${' + WORKERS_ENV + '}]},'
    '\\"task\\":{\\"type\\":\\"worker\\",\\"index\\":${JOB_COMPLETION_INDEX:?}}}"\n'
    'echo "TF_CONFIG=$TF_CONFIG"\n'
    'exec recsys "$@"\n'
)
# A DNS-1035 label: Service names and the training operator's webhook require a leading letter.
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class K8sJobSpec:
    """Everything the manifests need; ``train_args`` follow ``recsys`` (``["train", "--config", ...]``)."""

    name: str
    image: str
    num_workers: int
    train_args: Sequence[str]
    kind: str = "tfjob"
    namespace: str = "default"
    config_text: str | None = None  # mounted at /etc/recsys/config.yaml from a ConfigMap
    cpu: str = "4"
    memory: str = "16Gi"
    gpus: int = 1
    pvc: str = ""
    mount_path: str = "/mnt/recsys"
    backoff_limit: int = 3
    port: int = 2222
    service_account: str = ""
    image_pull_policy: str = "IfNotPresent"
    env: dict[str, str] = field(default_factory=dict)
    model_dir: str = ""  # the trainer's --model_dir inside the container (checked: see persistent_model_dir)
    allow_ephemeral_model_dir: bool = False
    run_as_user: int = 1000  # docker/trainer.Dockerfile's user; also the PVC's fsGroup


def validate(spec: K8sJobSpec) -> None:
    """Raise ValueError for a spec Kubernetes would reject (or that cannot train)."""
    if spec.kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {spec.kind!r}")
    if not _NAME.match(spec.name) or len(spec.name) > 50:
        raise ValueError(f"job name {spec.name!r} must be a DNS label: lower-case letters, digits and '-', "
                         "starting with a letter, at most 50 characters (pod hostnames append -<index>)")
    if spec.num_workers < 1:
        raise ValueError(f"workers must be >= 1, got {spec.num_workers}")
    if spec.gpus < 0 or spec.backoff_limit < 0:
        raise ValueError("gpus and backoff_limit must be >= 0")
    if not spec.image:
        raise ValueError("an image is required (--image or image: in --cluster_config)")
    if spec.run_as_user < 1:
        raise ValueError(f"run_as_user must be a non-root uid (>= 1), got {spec.run_as_user}")
    if spec.model_dir and not spec.allow_ephemeral_model_dir and not persistent_model_dir(spec):
        raise ValueError(
            f"model_dir {spec.model_dir} is on no persistent volume: the pod's own disk loses the backups "
            "at every restart (training would start again from step 0) and the export with the pod. Give "
            f"--pvc NAME with a --model_dir under --mount_path ({spec.mount_path}), a bucket path "
            "(gs://..., s3://...), or --allow_ephemeral_model_dir to accept that")


def persistent_model_dir(spec: K8sJobSpec) -> bool:
    """True when the model_dir outlives a pod: a bucket/remote URL, or a path on the mounted PVC."""
    if "://" in spec.model_dir:
        return True
    if not spec.pvc or not spec.model_dir.startswith("/"):
        return False
    mount = posixpath.normpath(spec.mount_path)
    return posixpath.commonpath([mount, posixpath.normpath(spec.model_dir)]) == mount


def worker_hosts(spec: K8sJobSpec) -> list[str]:
    """The Indexed Job's worker addresses ``<job>-<i>.<service>:<port>`` (Service named like the job)."""
    return [f"{spec.name}-{i}.{spec.name}:{spec.port}" for i in range(spec.num_workers)]


def labels(spec: K8sJobSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": "recsys", "app.kubernetes.io/component": "trainer",
            "recsys.io/job": spec.name}


def _metadata(spec: K8sJobSpec, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": spec.namespace, "labels": labels(spec)}


def config_map_name(spec: K8sJobSpec) -> str:
    return f"{spec.name}-config"


def _container(spec: K8sJobSpec, indexed: bool) -> dict[str, Any]:
    limits: dict[str, Any] = {"cpu": spec.cpu, "memory": spec.memory}
    if spec.gpus:
        limits[GPU_RESOURCE] = str(spec.gpus)  # a Quantity: the client validates it as a string
    env = [{"name": "PYTHONUNBUFFERED", "value": "1"}]
    env += [{"name": k, "value": v} for k, v in sorted(spec.env.items())]
    mounts: list[dict[str, Any]] = []
    if spec.pvc:
        mounts.append({"name": "data", "mountPath": spec.mount_path})
    if spec.config_text is not None:
        mounts.append({"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True})
    if spec.gpus:
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})  # NCCL needs more than the 64 MiB default
    container: dict[str, Any] = {"name": CONTAINER, "image": spec.image,
                                 "imagePullPolicy": spec.image_pull_policy}
    if indexed:
        hosts = ",".join(f'"{h}"' for h in worker_hosts(spec))
        env.insert(0, {"name": WORKERS_ENV, "value": hosts})
        container["command"] = ["/bin/sh", "-c", TF_CONFIG_SNIPPET, "recsys-worker"]
    else:
        container["command"] = ["recsys"]
    container["securityContext"] = {  # the restricted Pod Security Standard, container part
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"}}
    container.update({"args": list(spec.train_args), "env": env,
                      "ports": [{"name": PORT_NAME, "containerPort": spec.port, "protocol": "TCP"}],
                      "resources": {"requests": {"cpu": spec.cpu, "memory": spec.memory}, "limits": limits}})
    if mounts:
        container["volumeMounts"] = mounts
    return container


def _pod_spec(spec: K8sJobSpec, indexed: bool) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = []
    if spec.pvc:
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": spec.pvc}})
    if spec.config_text is not None:
        volumes.append({"name": "config", "configMap": {"name": config_map_name(spec)}})
    if spec.gpus:
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
    pod: dict[str, Any] = {
        "containers": [_container(spec, indexed)],
        "automountServiceAccountToken": False,  # the trainer never calls the Kubernetes API
        "securityContext": {"runAsNonRoot": True, "runAsUser": spec.run_as_user,
                            "runAsGroup": spec.run_as_user, "fsGroup": spec.run_as_user,
                            "seccompProfile": {"type": "RuntimeDefault"}},
    }
    if indexed:
        pod["subdomain"] = spec.name
        pod["restartPolicy"] = "Never"  # required by podFailurePolicy; the Job controller recreates pods
    if volumes:
        pod["volumes"] = volumes
    if spec.gpus:
        pod["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    if spec.service_account:
        pod["serviceAccountName"] = spec.service_account
    return pod


def config_map(spec: K8sJobSpec) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(spec, config_map_name(spec)),
            "data": {"config.yaml": spec.config_text or ""}}


def tfjob(spec: K8sJobSpec) -> dict[str, Any]:
    """A ``kubeflow.org/v1`` TFJob with N Worker replicas (worker 0 is the chief), OnFailure restarts."""
    return {
        "apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": _metadata(spec, spec.name),
        "spec": {
            "runPolicy": {"backoffLimit": spec.backoff_limit, "cleanPodPolicy": "Running"},
            "tfReplicaSpecs": {"Worker": {
                "replicas": spec.num_workers, "restartPolicy": "OnFailure",
                "template": {"metadata": {"labels": labels(spec)}, "spec": _pod_spec(spec, False)}}},
        },
    }


def network_policy(spec: K8sJobSpec) -> dict[str, Any]:
    """Only the job's own pods reach its workers, and only on the worker port (no other ingress)."""
    own = {"matchLabels": {"recsys.io/job": spec.name}}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": _metadata(spec, f"{spec.name}-workers"),
            "spec": {"podSelector": own, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": own}],
                                  "ports": [{"protocol": "TCP", "port": spec.port}]}]}}


def headless_service(spec: K8sJobSpec) -> dict[str, Any]:
    """The Service that gives Indexed Job pods the DNS names ``<job>-<i>.<service>``."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(spec, spec.name),
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                     "selector": {"recsys.io/job": spec.name},
                     "ports": [{"name": PORT_NAME, "port": spec.port, "targetPort": spec.port}]}}


def indexed_job(spec: K8sJobSpec) -> dict[str, Any]:
    """A ``batch/v1`` Indexed Job. Its ``backoffLimit`` counts pod failures, and one failure takes every
    worker down (their collectives abort), so it is ``backoff_limit * N``; evictions/preemptions are not
    counted (podFailurePolicy)."""
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": _metadata(spec, spec.name),
        "spec": {
            "completionMode": "Indexed", "completions": spec.num_workers, "parallelism": spec.num_workers,
            "backoffLimit": spec.backoff_limit * spec.num_workers,
            "podFailurePolicy": {"rules": [
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]},
            "template": {"metadata": {"labels": labels(spec)}, "spec": _pod_spec(spec, True)},
        },
    }


def render(spec: K8sJobSpec) -> list[dict[str, Any]]:
    """The manifests, in apply order: [ConfigMap], NetworkPolicy, TFJob | [ConfigMap], NetworkPolicy,
    Service, Job."""
    validate(spec)
    docs = [config_map(spec)] if spec.config_text is not None else []
    docs.append(network_policy(spec))
    if spec.kind == "tfjob":
        return docs + [tfjob(spec)]
    return docs + [headless_service(spec), indexed_job(spec)]


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (the mounted config, the shell snippet) as readable ``|`` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(docs: list[dict[str, Any]]) -> str:
    """A multi-document YAML stream (``kubectl apply -f -`` reads it)."""
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)

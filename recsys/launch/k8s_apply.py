"""Create rendered manifests with the official ``kubernetes`` client and follow the job until it ends.

Uses the user's kubeconfig (``kubernetes.config.load_kube_config``). TFJobs go through
CustomObjectsApi, Jobs through BatchV1Api, ConfigMaps and Services through CoreV1Api.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TFJOB = ("kubeflow.org", "v1", "tfjobs")


@dataclass(frozen=True)
class JobState:
    """A snapshot of the job: a short phase word, a detail string, and whether it has ended (and how)."""

    phase: str
    detail: str
    done: bool = False
    ok: bool = False


def _import_client() -> Any:
    try:
        import kubernetes
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise RuntimeError("submitting to Kubernetes needs the kubernetes client: "
                           "pip install -e '.[kubernetes]' (or use --dry_run)") from err
    return kubernetes


def api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An ApiClient configured from the kubeconfig (default ``~/.kube/config`` / ``$KUBECONFIG``)."""
    k8s = _import_client()
    configuration = k8s.client.Configuration()
    k8s.config.load_kube_config(config_file=kubeconfig, context=context,
                                client_configuration=configuration)
    return k8s.client.ApiClient(configuration)


def create(docs: list[dict[str, Any]], client: Any, say: Callable[[str], None] = print) -> None:
    """Create each manifest in order; an existing object is an error (pick another --name)."""
    k8s = _import_client()
    core, batch = k8s.client.CoreV1Api(client), k8s.client.BatchV1Api(client)
    custom, networking = k8s.client.CustomObjectsApi(client), k8s.client.NetworkingV1Api(client)
    for doc in docs:
        kind, ns, name = doc["kind"], doc["metadata"]["namespace"], doc["metadata"]["name"]
        try:
            if kind == "ConfigMap":
                core.create_namespaced_config_map(ns, doc)
            elif kind == "Service":
                core.create_namespaced_service(ns, doc)
            elif kind == "NetworkPolicy":
                networking.create_namespaced_network_policy(ns, doc)
            elif kind == "Job":
                batch.create_namespaced_job(ns, doc)
            elif kind == "TFJob":
                custom.create_namespaced_custom_object(*TFJOB[:2], ns, TFJOB[2], doc)
            else:
                raise ValueError(f"do not know how to create a {kind}")
        except k8s.client.ApiException as err:
            if err.status == 409:
                raise RuntimeError(f"{kind} {ns}/{name} already exists; delete it or choose another "
                                   "--name") from None
            if err.status == 404 and kind == "TFJob":
                raise RuntimeError("the cluster has no TFJob resource (Kubeflow training operator not "
                                   "installed); use --k8s_kind=indexedjob") from None
            raise RuntimeError(f"creating {kind} {ns}/{name} failed: {err.status} {err.reason}: "
                               f"{err.body}") from None
        say(f"[submit] created {kind} {ns}/{name}")


def tfjob_state(obj: dict[str, Any]) -> JobState:
    """The TFJob's latest true condition (Created, Running, Restarting, Succeeded, Failed)."""
    status = obj.get("status") or {}
    conditions = [c for c in status.get("conditions") or [] if c.get("status") == "True"]
    replicas = (status.get("replicaStatuses") or {}).get("Worker") or {}
    counts = ", ".join(f"{k}={v}" for k, v in sorted(replicas.items()) if isinstance(v, int))
    if not conditions:
        return JobState("Pending", counts)
    last = conditions[-1]
    phase = last.get("type", "Unknown")
    detail = "; ".join(x for x in (counts, last.get("message", "")) if x)
    return JobState(phase, detail, phase in ("Succeeded", "Failed"), phase == "Succeeded")


def batch_job_state(job: Any) -> JobState:
    """An Indexed Job's state from its conditions and active/succeeded/failed pod counts."""
    status = job.status
    counts = (f"active={status.active or 0}, succeeded={status.succeeded or 0}, "
              f"failed={status.failed or 0}")
    for cond in status.conditions or []:
        if cond.status == "True" and cond.type in ("Complete", "Failed"):
            detail = "; ".join(x for x in (counts, cond.reason or "", cond.message or "") if x)
            return JobState(cond.type, detail, True, cond.type == "Complete")
    return JobState("Running" if status.active else "Pending", counts)


def follow(kind: str, name: str, namespace: str, client: Any, poll: float = 10.0,
           timeout: float = 24 * 3600.0, say: Callable[[str], None] = print) -> JobState:
    """Poll the job until it ends or ``timeout`` passes, printing every change of state."""
    k8s = _import_client()
    start = time.monotonic()
    last: JobState | None = None
    while True:
        if kind == "TFJob":
            obj = k8s.client.CustomObjectsApi(client).get_namespaced_custom_object(
                TFJOB[0], TFJOB[1], namespace, TFJOB[2], name)
            state = tfjob_state(obj)
        else:
            state = batch_job_state(k8s.client.BatchV1Api(client).read_namespaced_job_status(name, namespace))
        if state != last:
            say(f"[submit] {kind} {namespace}/{name}: {state.phase}"
                f"{f' ({state.detail})' if state.detail else ''} (elapsed {time.monotonic() - start:.0f}s)")
            last = state
        if state.done:
            return state
        if time.monotonic() - start > timeout:
            return JobState("Timeout", f"still {state.phase} after {timeout:.0f}s; the job keeps running "
                            f"(kubectl -n {namespace} get {kind.lower()} {name})", True, False)
        time.sleep(poll)

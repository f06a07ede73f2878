"""``recsys submit`` settings, one field per flag (``submit:`` in a config file beside the experiment)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipelines.typed import setting
from recsys.launch.placement import DEFAULT_PIN_CPUS, DEFAULT_THREADS

# The keys a --cluster_config file may set (the Kubernetes side of a job).
K8S_KEYS = ("image", "namespace", "cpu", "memory", "gpus", "pvc", "mount_path", "service_account",
            "k8s_kind", "backoff_limit", "workers", "name", "poll_interval")


@dataclass(frozen=True)
class SubmitSettings:
    """Where and how the workers of a training job run: a supervised local cluster or Kubernetes."""

    cluster: Literal["local", "kubernetes"] = setting("local", "where the workers run")
    workers: int = setting(2, "number of workers (worker 0 is the chief)")
    env: tuple[str, ...] = setting((), "extra environment variable for every worker: --env NCCL_DEBUG=INFO",
                                   multi=True)
    backoff_limit: int = setting(3, "restarts of the whole job before it is declared failed")
    # Local cluster.
    startup_timeout: float = setting(180.0, "local: seconds for every worker to come up (join the cluster / "
                                     "start training) before the attempt fails")
    heartbeat_timeout: float = setting(600.0, "local: a running worker with no output or heartbeat for this "
                                       "long is stalled; the job restarts")
    backoff_delay: float = setting(10.0, "local: delay before the first restart, doubled after each")
    backoff_max_delay: float = setting(300.0, "local: cap of the restart delay")
    grace_period: float = setting(10.0, "local: seconds between SIGTERM and SIGKILL when stopping")
    status_every: float = setting(30.0, "local: seconds between progress lines when the output is not a "
                                  "terminal (on one the line is refreshed in place every second)")
    heartbeat_every: int = setting(10, "local: the trainer writes a heartbeat every N global steps")
    logs_dir: str | None = setting(None, "local: per-worker logs and status.json (default "
                                   "<model_dir>/submit)")
    python: str = setting("", "local: the Python that runs `-m recsys.cli train` (default: this one)")
    stream_logs: bool = setting(True, "local: echo worker output as [worker-i] lines")
    stream_heartbeats: bool = setting(False, "local: echo the workers' heartbeat and progress lines too "
                                      "(without it one progress line sums them up; recsys -v turns it on)")
    isolate_network: bool = setting(True, "local: run each attempt's workers in a private network "
                                    "namespace, so no other host or process reaches their TensorFlow "
                                    "servers (which run any graph they are sent)")
    pin_cpus: bool = setting(DEFAULT_PIN_CPUS, "local: run worker i on its own slice of this machine's "
                             "CPUs (without it every worker's thread pools span every core)")
    threads_per_worker: int = setting(DEFAULT_THREADS, "local: TensorFlow intra-op and inter-op threads per "
                                      "worker (0: TensorFlow's default, sized to the worker's CPUs; keep "
                                      ">= 2: with one, a collective blocks the step)")
    # Kubernetes.
    k8s_kind: Literal["tfjob", "indexedjob"] = setting("tfjob", "kubernetes: a Kubeflow TFJob (needs the "
                                                       "training operator) or an Indexed Job + headless "
                                                       "Service")
    name: str | None = setting(None, "kubernetes: job name (default recsys-<config>-<UTC time>)")
    namespace: str = setting("default", "kubernetes: namespace")
    image: str | None = setting(None, "kubernetes: trainer image (docker/trainer.Dockerfile)")
    cpu: str = setting("4", "kubernetes: CPU per worker")
    memory: str = setting("16Gi", "kubernetes: memory per worker")
    gpus: int = setting(1, "kubernetes: GPUs per worker (nvidia.com/gpu); > 0 selects the NCCL collective "
                        "unless --set determinism.collective=... is given")
    pvc: str | None = setting(None, "kubernetes: PersistentVolumeClaim mounted at --mount_path (data, "
                              "checkpoints, exports)")
    mount_path: str = setting("/mnt/recsys", "kubernetes: where the PVC is mounted")
    allow_ephemeral_model_dir: bool = setting(False, "kubernetes: accept a --model_dir on the pod's own disk "
                                              "(no --pvc under it, no bucket): restarts then start again "
                                              "from step 0 and the export is lost with the pod")
    service_account: str | None = setting(None, "kubernetes: pod service account")
    kubeconfig: str | None = setting(None, "kubernetes: kubeconfig file (default ~/.kube/config)")
    context: str | None = setting(None, "kubernetes: kubeconfig context")
    poll_interval: float = setting(10.0, "kubernetes: seconds between status polls")
    k8s_timeout: float = setting(24 * 3600.0, "kubernetes: stop following (the job keeps running) after this "
                                 "many seconds")

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.threads_per_worker < 0:
            raise ValueError(f"threads_per_worker must be >= 0, got {self.threads_per_worker}")
        if self.backoff_limit < 0 or self.gpus < 0:
            raise ValueError(f"backoff_limit and gpus must be >= 0, got {self.backoff_limit}, {self.gpus}")
        for item in self.env:
            key, sep, _ = item.partition("=")
            if not sep or not key:
                raise ValueError(f"env: {item!r} is not KEY=VALUE")

"""``recsys submit --config FILE --cluster local|kubernetes --workers N [--set k=v ...] --model_dir DIR``.

``--cluster local`` (the default) runs N ``recsys train`` workers on 127.0.0.1 under a supervisor that
restarts them all on a failure or a stall, up to ``--backoff_limit`` times; the trainer resumes bit-exactly
from its backup. Run again into the same ``--model_dir``, it resumes an unfinished run, does nothing for
a finished one (``--overwrite`` starts over) and refuses a changed config, data or worker count.
``--cluster kubernetes`` renders a TFJob (or ``--k8s_kind=indexedjob``) and prints it (``--dry_run``)
or creates it with the kubernetes client and follows it to the end.
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import sys
from typing import Any

from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "YAML config file, or the name of one in configs/")
flags.DEFINE_multi_string("set", [], "config override passed to every worker: --set train.steps=200")
flags.DEFINE_string("model_dir", None, "the trainer's --model_dir (on Kubernetes: a path inside the "
                    "container, e.g. under --mount_path, or gs://...)")
flags.DEFINE_enum("cluster", "local", ["local", "kubernetes"], "where the workers run")
flags.DEFINE_integer("workers", 2, "number of workers (worker 0 is the chief)")
flags.DEFINE_multi_string("env", [], "extra environment variable for every worker: --env NCCL_DEBUG=INFO")
flags.DEFINE_integer("backoff_limit", 3, "restarts of the whole job before it is declared failed")
flags.DEFINE_bool("overwrite", False, "local: discard a previous run in --model_dir and start over (without "
                  "it a finished run is left alone and an unfinished one resumes exactly)")
flags.DEFINE_list("allow_resume_change", [], "resume although these differ from the run in --model_dir: "
                  "any of config, data, workers (recorded in the fingerprint; not bit-exact)")
# Local cluster.
flags.DEFINE_float("startup_timeout", 180.0, "local: seconds for every worker to come up (join the "
                   "cluster / start training) before the attempt fails")
flags.DEFINE_float("heartbeat_timeout", 600.0, "local: a running worker with no output or heartbeat "
                   "for this long is stalled; the job restarts")
flags.DEFINE_float("backoff_delay", 10.0, "local: delay before the first restart, doubled after each")
flags.DEFINE_float("backoff_max_delay", 300.0, "local: cap of the restart delay")
flags.DEFINE_float("grace_period", 10.0, "local: seconds between SIGTERM and SIGKILL when stopping")
flags.DEFINE_float("status_every", 30.0, "local: seconds between progress lines")
flags.DEFINE_integer("heartbeat_every", 10, "local: the trainer writes a heartbeat every N global steps")
flags.DEFINE_string("logs_dir", None, "local: per-worker logs and status.json (default "
                    "<model_dir>/submit)")
flags.DEFINE_string("python", sys.executable, "local: the Python that runs `-m recsys.cli train`")
flags.DEFINE_bool("stream_logs", True, "local: echo worker output as [worker-i] lines")
# Kubernetes.
flags.DEFINE_enum("k8s_kind", "tfjob", ["tfjob", "indexedjob"], "kubernetes: a Kubeflow TFJob (needs "
                  "the training operator) or an Indexed Job + headless Service")
flags.DEFINE_string("cluster_config", None, "kubernetes: YAML with defaults for the kubernetes flags "
                    "(image, namespace, cpu, memory, gpus, pvc, mount_path, k8s_kind, ...); flags win")
flags.DEFINE_string("name", None, "kubernetes: job name (default recsys-<config>-<UTC time>)")
flags.DEFINE_string("namespace", "default", "kubernetes: namespace")
flags.DEFINE_string("image", None, "kubernetes: trainer image (docker/trainer.Dockerfile)")
flags.DEFINE_string("cpu", "4", "kubernetes: CPU per worker")
flags.DEFINE_string("memory", "16Gi", "kubernetes: memory per worker")
flags.DEFINE_integer("gpus", 1, "kubernetes: GPUs per worker (nvidia.com/gpu); > 0 selects the NCCL "
                     "collective unless --set determinism.collective=... is given")
flags.DEFINE_string("pvc", None, "kubernetes: PersistentVolumeClaim mounted at --mount_path (data, "
                    "checkpoints, exports)")
flags.DEFINE_string("mount_path", "/mnt/recsys", "kubernetes: where the PVC is mounted")
flags.DEFINE_string("service_account", None, "kubernetes: pod service account")
flags.DEFINE_bool("dry_run", False, "print the plan (`recsys plan`, on stderr); kubernetes: and the "
                  "manifests (multi-document YAML); then exit")
flags.DEFINE_string("kubeconfig", None, "kubernetes: kubeconfig file (default ~/.kube/config)")
flags.DEFINE_string("context", None, "kubernetes: kubeconfig context")
flags.DEFINE_float("poll_interval", 10.0, "kubernetes: seconds between status polls")
flags.DEFINE_float("k8s_timeout", 24 * 3600.0, "kubernetes: stop following (the job keeps running) "
                   "after this many seconds")
flags.mark_flag_as_required("config")
flags.mark_flag_as_required("model_dir")

_K8S_KEYS = ("image", "namespace", "cpu", "memory", "gpus", "pvc", "mount_path", "service_account",
             "k8s_kind", "backoff_limit", "workers", "name", "poll_interval")


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _install_signal_handlers() -> None:
    """SIGINT/SIGTERM unwind the supervisor (which stops every worker); a second signal is ignored."""
    def handler(signum: int, frame: Any) -> None:
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
        raise _Interrupted(signum)

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, handler)


def _extra_env() -> dict[str, str]:
    env = {}
    for item in FLAGS.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"recsys submit: --env {item!r} is not KEY=VALUE")
        env[key] = value
    return env


def _load_config() -> Any:
    from recsys import config as cfg

    try:
        return cfg.load(FLAGS.config, FLAGS.set)
    except (cfg.ConfigError, FileNotFoundError) as err:
        raise SystemExit(f"recsys submit: {err}") from None


def _run_local() -> int:
    from pipelines.feature_spec import SPEC_FILENAME
    from recsys.launch.local import LocalJobSpec, run_local_job

    experiment = _load_config()
    spec_dir = experiment.data.spec_dir
    if spec_dir and "://" not in spec_dir and not os.path.isfile(os.path.join(spec_dir, SPEC_FILENAME)):
        # Every worker would fail the same way on every attempt: say so once, before starting any.
        raise SystemExit(f"recsys submit: no {SPEC_FILENAME} in data.spec_dir={spec_dir!r} (run `recsys "
                         "preprocess --output DIR` and pass --set data.spec_dir=DIR)")
    if FLAGS.dry_run:  # print the plan, start nothing
        from recsys.planning.render import submit_plan

        submit_plan(experiment, FLAGS.workers, FLAGS.memory)
        return 0
    config = FLAGS.config if not os.path.exists(FLAGS.config) else os.path.abspath(FLAGS.config)
    model_dir = os.path.abspath(FLAGS.model_dir)
    log_dir = FLAGS.logs_dir or os.path.join(model_dir, "submit")
    decided = _check_model_dir(experiment, model_dir, log_dir)
    if decided is not None:
        return decided
    command = [FLAGS.python, "-m", "recsys.cli", "train", "--config", config]
    command += [f"--set={s}" for s in FLAGS.set] + ["--model_dir", model_dir]
    if FLAGS.allow_resume_change:
        command.append("--allow_resume_change=" + ",".join(FLAGS.allow_resume_change))
    spec = LocalJobSpec(
        command=command, num_workers=FLAGS.workers,
        log_dir=log_dir, model_dir=model_dir,
        startup_timeout=FLAGS.startup_timeout, heartbeat_timeout=FLAGS.heartbeat_timeout,
        backoff_limit=FLAGS.backoff_limit, backoff_delay=FLAGS.backoff_delay,
        backoff_max_delay=FLAGS.backoff_max_delay, grace_period=FLAGS.grace_period,
        status_every=FLAGS.status_every, heartbeat_every=FLAGS.heartbeat_every,
        stream_logs=FLAGS.stream_logs, env=_extra_env(), backup_dir=os.path.join(model_dir, "backup"))
    print(f"[submit] local cluster: {spec.num_workers} worker(s), {experiment.train.steps} steps, "
          f"model_dir {model_dir}, logs in {spec.log_dir}", flush=True)
    _install_signal_handlers()
    try:
        result = run_local_job(spec)
    except _Interrupted as sig:
        print(f"[submit] {sig} received: stopped every worker", file=sys.stderr, flush=True)
        return 128 + sig.signum
    print(f"[submit] {result.message}", file=sys.stdout if result.ok else sys.stderr, flush=True)
    return 0 if result.ok else 1


def _check_model_dir(experiment: Any, model_dir: str, log_dir: str) -> int | None:
    """Before any worker starts: --overwrite, a finished run (exit 0) or a refused resume (exit 1)."""
    import shutil

    from recsys.train import run_state

    if FLAGS.overwrite:
        run_state.clear(model_dir)
        shutil.rmtree(log_dir, ignore_errors=True)
        return None
    try:
        ident = run_state.identity(experiment, FLAGS.workers)
    except (OSError, ValueError, KeyError):
        return None  # an unreadable spec: every worker reports it with the details
    try:
        has_backup = os.path.isfile(os.path.join(model_dir, "backup", "checkpoint"))
        action, state = run_state.prepare(model_dir, ident, has_backup=has_backup,
                                          allow=tuple(FLAGS.allow_resume_change), write=False)
    except (run_state.ResumeRefused, ValueError) as err:
        print(f"[submit] refused: {err}", file=sys.stderr, flush=True)
        return 1
    if action == "finished":
        assert state is not None
        print(f"[submit] {model_dir} already holds this run, finished at step {state.final_step} (weights "
              f"sha256 {state.weights_sha256[:16]}...): nothing to do; --overwrite starts over", flush=True)
        return 0
    if action == "resume":
        print(f"[submit] {model_dir} holds an unfinished run of this config: it resumes from its backup",
              flush=True)
    return None


def _cluster_settings() -> dict[str, Any]:
    """Kubernetes settings: flag defaults <- --cluster_config YAML <- flags given on the command line."""
    import yaml

    settings = {key: FLAGS[key].value for key in _K8S_KEYS}
    if FLAGS.cluster_config:
        with open(FLAGS.cluster_config, encoding="utf-8") as fh:
            loaded = yaml.safe_load(fh) or {}
        unknown = sorted(set(loaded) - set(_K8S_KEYS))
        if unknown:
            raise SystemExit(f"recsys submit: unknown keys {unknown} in {FLAGS.cluster_config}; "
                             f"known: {list(_K8S_KEYS)}")
        settings.update({k: v for k, v in loaded.items() if not FLAGS[k].present})
    return settings


def default_job_name(config_name: str, now: datetime.datetime | None = None) -> str:
    """``recsys-<config>-<yyyymmdd-hhmmss>`` as a DNS label."""
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%d-%H%M%S")
    base = re.sub(r"[^a-z0-9-]+", "-", config_name.lower()).strip("-")[:26] or "job"
    return f"recsys-{base}-{stamp}"


def _run_kubernetes() -> int:
    from recsys.config import loading
    from recsys.launch import k8s_manifests as manifests

    experiment = _load_config()
    s = _cluster_settings()
    config_text = loading.config_text(FLAGS.config)
    sets = list(FLAGS.set)
    if int(s["gpus"]) > 0 and not any(x.startswith("determinism.collective=") for x in sets):
        sets.append("determinism.collective=NCCL")
    train_args = ["train", "--config", f"{manifests.CONFIG_MOUNT}/config.yaml"]
    train_args += [f"--set={x}" for x in sets] + ["--model_dir", FLAGS.model_dir]
    if FLAGS.allow_resume_change:
        train_args.append("--allow_resume_change=" + ",".join(FLAGS.allow_resume_change))
    spec = manifests.K8sJobSpec(
        name=s["name"] or default_job_name(experiment.name), image=s["image"] or "",
        num_workers=int(s["workers"]), train_args=train_args, kind=s["k8s_kind"], namespace=s["namespace"],
        config_text=config_text, cpu=str(s["cpu"]), memory=str(s["memory"]), gpus=int(s["gpus"]),
        pvc=s["pvc"] or "", mount_path=s["mount_path"], backoff_limit=int(s["backoff_limit"]),
        service_account=s["service_account"] or "", env=_extra_env())
    try:
        docs = manifests.render(spec)
    except ValueError as err:
        raise SystemExit(f"recsys submit: {err}") from None
    if FLAGS.dry_run:
        from recsys.planning.render import submit_plan

        submit_plan(experiment, int(s["workers"]), str(s["memory"]))  # on stderr: stdout is the YAML
        sys.stdout.write(manifests.to_yaml(docs))
        return 0
    from recsys.launch import k8s_apply

    try:
        client = k8s_apply.api_client(FLAGS.kubeconfig, FLAGS.context)
        k8s_apply.create(docs, client)
        kind = "TFJob" if spec.kind == "tfjob" else "Job"
        state = k8s_apply.follow(kind, spec.name, spec.namespace, client, poll=float(s["poll_interval"]),
                                 timeout=FLAGS.k8s_timeout)
    except RuntimeError as err:
        raise SystemExit(f"recsys submit: {err}") from None
    print(f"[submit] {kind} {spec.namespace}/{spec.name} ended: {state.phase}"
          f"{f' ({state.detail})' if state.detail else ''}", flush=True)
    return 0 if state.ok else 1


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise SystemExit(f"recsys submit: unexpected arguments {argv[1:]}")
    if FLAGS.workers < 1:
        raise SystemExit("recsys submit: --workers must be >= 1")
    code = _run_local() if FLAGS.cluster == "local" else _run_kubernetes()
    sys.exit(code)

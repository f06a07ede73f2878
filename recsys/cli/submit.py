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
import shlex
import signal
import sys
from typing import Any

from absl import flags

from recsys import quiet
from recsys.cli import exits
from recsys.cli.flagging import Flags, resolve_or_exit
from recsys.config import loading
from recsys.settings.submit import K8S_KEYS, SubmitSettings
from recsys.train.run_dir import RunDir

FLAGS = flags.FLAGS
# Run arguments (what this invocation does), not settings of the job.
flags.DEFINE_string("model_dir", None, "the trainer's --model_dir (on Kubernetes: a path inside the "
                    "container, e.g. under --mount_path, or gs://...)")
flags.DEFINE_bool("overwrite", False, "local: discard a previous run in --model_dir and start over (without "
                  "it a finished run is left alone and an unfinished one resumes exactly)")
flags.DEFINE_list("allow_resume_change", [], "resume although these differ from the run in --model_dir: "
                  "any of config, data, workers (recorded in the fingerprint; not bit-exact)")
flags.DEFINE_string("cluster_config", None, "kubernetes: YAML with defaults for the kubernetes settings "
                    f"({', '.join(K8S_KEYS)}); flags and --set submit.KEY win")
flags.DEFINE_bool("dry_run", False, "print the plan (`recsys plan`, on stderr); kubernetes: and the "
                  "manifests (multi-document YAML); then exit")
SETTINGS = Flags(SubmitSettings, "submit", config_help="YAML config file, or the name of one in configs/; "
                 "may hold a submit: section with this command's settings")
flags.mark_flag_as_required("config")
flags.mark_flag_as_required("model_dir")


def _settings() -> SubmitSettings:
    """defaults <- the config's submit: section <- --cluster_config <- flags given <- --set submit.KEY."""
    import yaml

    def build() -> SubmitSettings:
        cluster: dict[str, Any] = {}
        if FLAGS.cluster_config:
            with open(FLAGS.cluster_config, encoding="utf-8") as fh:
                cluster = yaml.safe_load(fh) or {}
            unknown = sorted(set(cluster) - set(K8S_KEYS))
            if unknown:
                raise loading.ConfigError(f"unknown keys {unknown} in {FLAGS.cluster_config}; "
                                          f"known: {list(K8S_KEYS)}")
        _, mine = SETTINGS.overrides()
        return loading.load_section(SubmitSettings, "submit", FLAGS.config, mine,
                                    {**cluster, **SETTINGS.explicit()})

    settings: SubmitSettings = resolve_or_exit("submit", build)
    if FLAGS.print_config:
        SETTINGS.show({**loading.to_dict(_load_config()), "submit": loading.to_dict(settings)})
    return settings


def _install_signal_handlers(stop: Any) -> None:
    """SIGINT/SIGTERM: the first asks the workers to stop at a step boundary (the supervisor forwards
    it), a second stops them at once. The handler only records the signal."""
    def handler(signum: int, frame: Any) -> None:
        stop.request(signum)

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, handler)


def _resume_hint() -> str:
    return "run the same command to resume: " + " ".join(shlex.quote(a) for a in ["recsys", *sys.argv[1:]])


def _extra_env(s: SubmitSettings) -> dict[str, str]:
    """``KEY=VALUE`` items (checked by SubmitSettings) as a mapping."""
    return dict(item.split("=", 1) for item in s.env)


def _load_config() -> Any:
    return resolve_or_exit("submit", SETTINGS.experiment)


def _run_local(s: SubmitSettings) -> int:
    from pipelines.feature_spec import SPEC_FILENAME
    from recsys.launch.local import LocalJobSpec, StopRequest, run_local_job

    experiment = _load_config()
    spec_dir = experiment.data.spec_dir
    if spec_dir and "://" not in spec_dir and not os.path.isfile(os.path.join(spec_dir, SPEC_FILENAME)):
        # Every worker would fail the same way on every attempt: say so once, before starting any.
        exits.fail("submit", f"no {SPEC_FILENAME} in data.spec_dir={spec_dir!r} (run `recsys "
                         "preprocess --output DIR` and pass --set data.spec_dir=DIR)")
    if FLAGS.dry_run:  # print the plan, start nothing
        from recsys.planning.render import submit_plan

        submit_plan(experiment, s.workers, s.memory)
        return 0
    config = FLAGS.config if not os.path.exists(FLAGS.config) else os.path.abspath(FLAGS.config)
    model_dir = os.path.abspath(FLAGS.model_dir)
    log_dir = s.logs_dir or os.path.join(model_dir, "submit")
    decided = _check_model_dir(experiment, model_dir, log_dir, s.workers)
    if decided is not None:
        return decided
    experiment_sets, _ = SETTINGS.overrides()
    command = [s.python or sys.executable, "-m", "recsys.cli", "train", "--config", config]
    command += [f"--set={x}" for x in experiment_sets] + ["--model_dir", model_dir]
    if FLAGS.allow_resume_change:
        command.append("--allow_resume_change=" + ",".join(FLAGS.allow_resume_change))
    spec = LocalJobSpec(
        command=command, num_workers=s.workers,
        log_dir=log_dir, model_dir=model_dir,
        startup_timeout=s.startup_timeout, heartbeat_timeout=s.heartbeat_timeout,
        backoff_limit=s.backoff_limit, backoff_delay=s.backoff_delay,
        backoff_max_delay=s.backoff_max_delay, grace_period=s.grace_period,
        status_every=s.status_every, heartbeat_every=s.heartbeat_every,
        stream_logs=s.stream_logs, stream_heartbeats=s.stream_heartbeats or quiet.is_verbose(),
        env=_extra_env(s), backup_dir=RunDir(model_dir).backup,
        pin_cpus=s.pin_cpus, threads_per_worker=s.threads_per_worker, isolate_network=s.isolate_network,
        total_steps=experiment.train.steps)
    print(f"[submit] local cluster: {spec.num_workers} worker(s), {experiment.train.steps} steps, "
          f"model_dir {model_dir}, logs in {spec.log_dir}", flush=True)
    stop = StopRequest()
    _install_signal_handlers(stop)
    result = run_local_job(spec, stop=stop)
    if result.state == "stopped":
        print(exits.message("submit", f"{result.message}; {_resume_hint()}"), file=sys.stderr, flush=True)
        return 128 + stop.signum
    if not result.ok:
        print(exits.message("submit", result.message), file=sys.stderr, flush=True)
        return exits.FAILED
    print(f"[submit] {result.message}", flush=True)
    return exits.OK


def _check_model_dir(experiment: Any, model_dir: str, log_dir: str, workers: int) -> int | None:
    """Before any worker starts: --overwrite (exit 1 if not a run's directory), a finished run (exit 0)
    or a refused resume (exit 78, as the trainer's)."""
    import shutil

    from recsys.train import run_state

    if FLAGS.overwrite:
        try:
            run_state.clear(model_dir)
        except ValueError as err:  # not a run's directory: nothing deleted
            print(exits.message("submit", f"refused: {err}"), file=sys.stderr, flush=True)
            return exits.FAILED
        shutil.rmtree(log_dir, ignore_errors=True)
        return None
    try:
        ident = run_state.identity(experiment, workers)
    except (OSError, ValueError, KeyError):
        return None  # an unreadable spec: every worker reports it with the details
    try:
        has_backup = RunDir(model_dir).has_backup()
        action, state = run_state.prepare(model_dir, ident, has_backup=has_backup,
                                          allow=tuple(FLAGS.allow_resume_change), write=False)
    except (run_state.ResumeRefused, ValueError) as err:
        print(exits.message("submit", f"refused: {err}"), file=sys.stderr, flush=True)
        return exits.REFUSED_RESUME if isinstance(err, run_state.ResumeRefused) else exits.FAILED
    if action == "finished":
        assert state is not None
        print(f"[submit] {model_dir} already holds this run, finished at step {state.final_step} (weights "
              f"sha256 {state.weights_sha256[:16]}...): nothing to do; --overwrite starts over", flush=True)
        return 0
    if action == "resume":
        print(f"[submit] {model_dir} holds an unfinished run of this config: it resumes from its backup",
              flush=True)
    return None


def default_job_name(config_name: str, now: datetime.datetime | None = None) -> str:
    """``recsys-<config>-<yyyymmdd-hhmmss>`` as a DNS label."""
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%d-%H%M%S")
    base = re.sub(r"[^a-z0-9-]+", "-", config_name.lower()).strip("-")[:26] or "job"
    return f"recsys-{base}-{stamp}"


def _run_kubernetes(s: SubmitSettings) -> int:
    from recsys.launch import k8s_manifests as manifests

    experiment = _load_config()
    config_text = loading.config_text(FLAGS.config)
    sets, _ = SETTINGS.overrides()
    if s.gpus > 0 and not any(x.startswith("determinism.collective=") for x in sets):
        sets.append("determinism.collective=NCCL")
    train_args = ["train", "--config", f"{manifests.CONFIG_MOUNT}/config.yaml"]
    train_args += [f"--set={x}" for x in sets] + ["--model_dir", FLAGS.model_dir]
    if FLAGS.allow_resume_change:
        train_args.append("--allow_resume_change=" + ",".join(FLAGS.allow_resume_change))
    spec = manifests.K8sJobSpec(
        name=s.name or default_job_name(experiment.name), image=s.image or "",
        num_workers=s.workers, train_args=train_args, kind=s.k8s_kind, namespace=s.namespace,
        config_text=config_text, cpu=s.cpu, memory=s.memory, gpus=s.gpus,
        pvc=s.pvc or "", mount_path=s.mount_path, backoff_limit=s.backoff_limit,
        service_account=s.service_account or "", env=_extra_env(s), model_dir=FLAGS.model_dir,
        allow_ephemeral_model_dir=s.allow_ephemeral_model_dir)
    try:
        docs = manifests.render(spec)
    except ValueError as err:
        exits.usage("submit", err)
    if FLAGS.dry_run:
        from recsys.planning.render import submit_plan

        submit_plan(experiment, s.workers, s.memory)  # on stderr: stdout is the YAML
        sys.stdout.write(manifests.to_yaml(docs))
        return 0
    from recsys.launch import k8s_apply

    try:
        client = k8s_apply.api_client(s.kubeconfig, s.context)
        k8s_apply.create(docs, client)
        kind = "TFJob" if spec.kind == "tfjob" else "Job"
        state = k8s_apply.follow(kind, spec.name, spec.namespace, client, poll=s.poll_interval,
                                 timeout=s.k8s_timeout)
    except RuntimeError as err:
        exits.fail("submit", err)
    print(f"[submit] {kind} {spec.namespace}/{spec.name} ended: {state.phase}"
          f"{f' ({state.detail})' if state.detail else ''}", flush=True)
    return 0 if state.ok else 1


def main(argv: list[str]) -> None:
    exits.no_arguments("submit", argv)
    s = _settings()
    code = _run_local(s) if s.cluster == "local" else _run_kubernetes(s)
    sys.exit(code)

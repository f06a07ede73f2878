"""The main job end to end on embedded defaults: data -> Beam -> study on the local cluster -> export
-> TF Serving API server -> gRPC queries -> replica-divergence monitor -> accuracy/PD table.

Each stage runs the real component (the same commands a user runs); every process the demo starts is
stopped when it ends, fails or is interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time

from recsys.launch.ports import free_ports
from recsys.settings.demo import DemoSettings

STAGES = 8


DemoOptions = DemoSettings  # the demo's options are its command settings (``demo:`` in a config file)

CONFIGS = {"synthetic": "synthetic_small", "criteo": "criteo_study", "movielens": "movielens_study"}


class Demo:
    """Runs the stages in order and owns every long-running process it starts."""

    def __init__(self, options: DemoSettings, config: str | None = None,
                 overrides: tuple[str, ...] = ()) -> None:
        """``config``/``overrides``: the experiment (default: the source's named one) and its ``--set``."""
        self.o = options
        self.config, self.overrides = config, overrides
        self.out = os.path.abspath(options.output)
        self.start = time.monotonic()
        self.server: subprocess.Popen | None = None

    # ---- output --------------------------------------------------------------------------------
    def stage(self, n: int, text: str) -> None:
        elapsed = time.monotonic() - self.start
        print(f"\n=== [{n}/{STAGES}] {text}  (elapsed {int(elapsed // 60)}m{int(elapsed % 60):02d}s)",
              flush=True)

    def cli(self, *args: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess:
        """Run a ``recsys`` subcommand as its own process, as a user would."""
        cmd = [sys.executable, "-m", "recsys.cli", *args]
        print("$ recsys " + " ".join(args), flush=True)
        proc = subprocess.run(cmd, text=True, capture_output=capture)
        if check and proc.returncode != 0:
            detail = (proc.stderr or "")[-3000:] if capture else ""
            raise RuntimeError(f"`recsys {args[0]}` failed with exit code {proc.returncode}\n{detail}")
        return proc

    # ---- stages ----------------------------------------------------------------------------------
    def preprocess(self) -> str:
        data = os.path.join(self.out, "data")
        # Two time windows: the study's versions (v1) learn window 0, the update (v2) window 1.
        args = ["preprocess", f"--source={self.o.source}", f"--output={data}", "--windows=2"]
        if self.o.source == "synthetic":
            args.append(f"--rows={self.o.rows}")
        else:
            if not self.o.data:
                raise ValueError(f"--source={self.o.source} needs --data (DATA=<path> with make demo)")
            args.append(f"--input={self.o.data}")
        self.cli(*args)
        return data

    def study(self, data: str) -> dict:
        from recsys.config import loading
        from recsys.study import runner

        overrides = [f"data.spec_dir={data}", "data.windows=[0]", "train.verbose=0", "train.checkpoint=false"]
        if self.o.steps:
            overrides.append(f"train.steps={self.o.steps}")
        if self.o.eval_every:
            overrides.append(f"train.eval_every={self.o.eval_every}")
        if self.o.learning_rate:
            overrides.append(f"train.learning_rate={self.o.learning_rate}")
        base = loading.load(self.config or CONFIGS[self.o.source], [*overrides, *self.overrides])
        options = runner.StudyOptions(
            activations=self.o.activations, replicas=self.o.replicas, sources=self.o.sources,
            title=f"demo: {self.o.source}", export_dir=os.path.join(self.out, "models"),
            workers=self.o.workers, topology_workers=self.o.topology_workers,
            validation_fraction=self.o.validation_fraction,
            # A fixed length keeps the demo's time: its finding says when the models are short-trained
            # (best validation step = the last); `recsys study` trains to convergence by default.
            patience=0)
        return runner.run_study(base, options, os.path.join(self.out, "study"), overwrite=True,
                                sections={"demo": self.o})

    def update(self, result: dict) -> dict[str, dict]:
        """v2 of each variant: replica 1 (v1) warm-started on window 1, exported as the next version.

        Returns, per variant, the update churn v1 -> v2 on the eval split (CIs over examples: one
        chain) beside v1's replica PD from the study, and the AUCs of both versions."""
        import numpy as np

        from recsys.config import loading
        from recsys.repro import accuracy, churn_stats, summaries
        from recsys.study import runner
        from recsys.train.run_dir import RunDir

        out = {}
        for v in result["variants"]:
            name = v["variant"]
            tag = summaries.group_tag(name)
            parent = os.path.join(self.out, "study", "runs", tag, "replica_0")
            base = loading.load(os.path.join(parent, "config.yaml"))
            cfg = dataclasses.replace(
                base, data=dataclasses.replace(base.data, windows=(1,)),
                # an update continues a trained model: half the steps of v1 (the demo's time limit)
                train=dataclasses.replace(base.train, warm_start_from=parent,
                                          steps=max(1, base.train.steps // 2), eval_every=0),
                export=dataclasses.replace(base.export, version=self.o.replicas + 1))
            print(f"  {name}: v2 = v1 (replica 1) + {cfg.train.steps} steps on window 1 -> "
                  f"{os.path.join(self.out, 'models', tag, str(self.o.replicas + 1))}", flush=True)
            v2 = runner.train_replica(cfg, os.path.join(self.out, "update", tag))
            with np.load(RunDir(parent).eval_predictions) as saved:
                v1 = saved["predictions"][-1]
            labels = v2["labels"]
            (churn,) = churn_stats.bootstrap_churn({name: (v1[None, :], v2["predictions"][None, :])},
                                                   draws=200)
            last = v["pd_over_time"][-1]  # v1 is replica 1 at its last step: replica PD there too
            replica_pd = {"estimate": last["relative_pd"], "ci_lower": last["relative_pd_ci_lower"],
                          "ci_upper": last["relative_pd_ci_upper"]}
            out[name] = {"churn": churn.as_dict(), "replica_pd": replica_pd, "step": last["step"],
                         "auc_v1": accuracy.accuracy_metrics(labels, v1)["auc"],
                         "auc_v2": v2["metrics"]["auc"]}
        return out

    def write_rows(self, data: str) -> str:
        """A few eval rows as JSON lines of raw feature values: what a client sends."""
        from pipelines import feature_spec
        from recsys.data.input import make_dataset
        from recsys.export.warmup import raw_batch

        spec = feature_spec.load(data)
        path = os.path.join(self.out, "eval_rows.jsonl")
        ds = make_dataset(spec, "eval", self.o.query_rows)
        features, _ = next(iter(ds))
        columns = raw_batch(features, spec)
        with open(path, "w", encoding="utf-8") as fh:
            for i in range(len(next(iter(columns.values())))):
                row: dict[str, str | float | None] = {}
                for name, values in columns.items():
                    v = values[i]
                    if isinstance(v, bytes):
                        row[name] = v.decode("utf-8", "replace")
                    else:
                        row[name] = None if math.isnan(float(v)) else float(v)
                fh.write(json.dumps(row) + "\n")
        return path

    def serve(self, models: dict[str, str]) -> int:
        """Start ``recsys serve`` with every variant as a model (its replicas as versions)."""
        from serving.model_config import single_model_config, write_config

        configs = [single_model_config(name, path, all_versions=True) for name, path in models.items()]
        config = write_config(os.path.join(self.out, "models.config"), configs)
        port = free_ports(1)[0]
        args = ["serve", f"--port={port}", f"--model_config_file={config}", "--enable_batching"]
        print("$ recsys " + " ".join(args) + "   (in the background)", flush=True)
        log = open(os.path.join(self.out, "server.log"), "w")  # noqa: SIM115 - closed with the process
        self.server = subprocess.Popen([sys.executable, "-m", "recsys.cli", *args], stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready(port, models, timeout=180)
        print(f"server ready on 127.0.0.1:{port} (log: {log.name})", flush=True)
        return port

    def _wait_ready(self, port: int, models: dict[str, str], timeout: float) -> None:
        import grpc
        from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

        deadline = time.monotonic() + timeout
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        pending = set(models)
        server = self.server
        assert server is not None  # started by serve()
        while pending:
            if server.poll() is not None:
                raise RuntimeError(f"recsys serve exited with code {server.returncode}; "
                                   f"see {os.path.join(self.out, 'server.log')}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"models {sorted(pending)} not available after {timeout:.0f}s")
            for name in list(pending):
                try:
                    req = get_model_status_pb2.GetModelStatusRequest()
                    req.model_spec.name = name
                    status = stub.GetModelStatus(req, timeout=5)
                    states = [v.state for v in status.model_version_status]
                    if len(states) >= self.o.replicas + 1 and all(
                            s == get_model_status_pb2.ModelVersionStatus.AVAILABLE for s in states):
                        pending.discard(name)
                except grpc.RpcError:
                    pass
            time.sleep(0.5)
        channel.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after a grace period)."""
        if self.server is None or self.server.poll() is not None:
            return
        os.killpg(self.server.pid, signal.SIGTERM)
        try:
            self.server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait(timeout=10)

    # ---- the whole job ---------------------------------------------------------------------------
    def run(self) -> dict:
        from recsys.repro import summaries
        from recsys.study import dashboards, report, runner

        os.makedirs(self.out, exist_ok=True)
        try:
            self.stage(1, f"Beam preprocessing ({self.o.source}) -> TFRecord shards + feature spec")
            data = self.preprocess()
            cluster = "local cluster (MultiWorkerMirroredStrategy on 127.0.0.1)"
            if "topology" in self.o.sources:
                counts = [self.o.topology_workers[i % len(self.o.topology_workers)]
                          for i in range(self.o.replicas)]
                where = (f"replicas on {', '.join(map(str, counts))} workers of a {cluster}, same seed, "
                         "data order and global batches")
            else:
                where = (f"each on a {self.o.workers}-worker {cluster}" if self.o.workers > 1
                         else "each in process")
            self.stage(2, f"reproducibility study: {', '.join(self.o.activations)} x {self.o.replicas} "
                          f"replicas, {where}")
            result = self.study(data)
            self.stage(3, "exports (TF Serving layout: one model per variant, its replicas as versions)")
            models = {summaries.group_tag(v): os.path.join(self.out, "models", summaries.group_tag(v))
                      for v in self.o.activations}
            for name, path in models.items():
                print(f"  {name}: {path}/{{{','.join(sorted(os.listdir(path)))}}}")
            self.stage(4, "model update: v2 of each variant, warm-started from v1 on the next time window")
            updates = self.update(result)
            rows = self.write_rows(data)
            self.stage(5, "recsys serve: gRPC PredictionService / ModelService (v1 replicas and v2)")
            port = self.serve(models)
            first = next(iter(models))
            self.stage(6, f"recsys query over gRPC ({first}, version 1, first rows)")
            head = os.path.join(self.out, "query_rows.jsonl")
            with open(rows, encoding="utf-8") as src, open(head, "w", encoding="utf-8") as dst:
                dst.writelines(line for _, line in zip(range(5), src, strict=False))
            self.cli("query", f"--server=127.0.0.1:{port}", f"--model_name={first}", "--version=1",
                     f"--rows={head}")
            self.stage(7, "replica-divergence monitor: the same requests to every replica, PD online; then "
                          "v1 against v2 (the update users see)")
            online = {}
            for name in models:
                replicas = [f"--replica=127.0.0.1:{port}/{name}@{v + 1}" for v in range(self.o.replicas)]
                proc = self.cli("monitor", "--check", *replicas, f"--rows={rows}", f"--group={name}",
                                f"--logdir={os.path.join(self.tb_root(), 'monitor', name)}", capture=True,
                                check=False)
                if proc.returncode not in (0, 1):
                    raise RuntimeError(f"recsys monitor failed: {proc.stderr[-2000:]}")
                online[name] = _last_json(proc.stdout)
                print(f"  {name}: {json.dumps(online[name])[:300]}")
                proc = self.cli("monitor", "--check", f"--replica=127.0.0.1:{port}/{name}@1",
                                f"--replica=127.0.0.1:{port}/{name}@{self.o.replicas + 1}", f"--rows={rows}",
                                f"--group={name}_update",
                                f"--logdir={os.path.join(self.tb_root(), 'monitor', name + '_update')}",
                                capture=True, check=False)
                if proc.returncode not in (0, 1):
                    raise RuntimeError(f"recsys monitor failed: {proc.stderr[-2000:]}")
                online[f"{name} v1->v2"] = _last_json(proc.stdout)
        finally:
            self.stop()
        self.stage(8, "accuracy beside prediction difference: between replicas, and between versions")
        with open(os.path.join(self.out, "study", runner.RESULTS_MD), encoding="utf-8") as fh:
            print(fh.read())
        print(update_table(updates))
        for name, pd in online.items():
            rel = _find(pd, "relative")
            if rel is not None:
                what = "served versions" if name.endswith("v1->v2") else "served replicas"
                print(f"online relative PD between {what} of {name} ({self.o.query_rows} rows): "
                      f"{rel * 100:.3g}%")
        print(f"\nfrontier plot: {os.path.join(self.out, 'study', runner.FRONTIER_PNG)}")
        print("PD dashboards (study + monitor):\n"
              f"  tensorboard --logdir {self.tb_root()} --host 127.0.0.1 --port 6006\n"
              f"  then open {dashboards.open_url()} ({dashboards.OPEN_HINT})")
        elapsed = time.monotonic() - self.start
        print(f"demo finished in {int(elapsed // 60)}m{int(elapsed % 60):02d}s; all outputs in {self.out}")
        finding = report.finding_line(result)
        print(f"\nFinding: {finding}", flush=True)
        print(f"Which source dominates (one study per source): {decomposition_command(self.o, self.out)}",
              flush=True)
        return {"study": result, "online": online, "seconds": elapsed, "finding": finding,
                "updates": updates}

    def tb_root(self) -> str:
        """The study's TensorBoard logdir; the monitor writes one run per variant under monitor/."""
        from recsys.study import dashboards

        return os.path.join(self.out, "study", dashboards.TB_DIR)


def decomposition_command(options: DemoSettings, out: str) -> str:
    """``recsys study --by_source`` on the demo's resolved experiment (its saved config.yaml: data, steps,
    learning rate) and variants, one study per source, as a user pastes it."""
    import shlex

    from recsys.study.sources import DECOMPOSED

    args = ["recsys", "study", f"--config={os.path.join(out, 'study', 'config.yaml')}", "--by_source",
            f"--sources={','.join(DECOMPOSED)}", f"--activations={','.join(options.activations)}",
            f"--replicas={options.replicas}",
            f"--topology_workers={','.join(map(str, options.topology_workers))}",
            f"--validation_fraction={options.validation_fraction:g}", "--patience=0",
            f"--output={os.path.join(out, 'by_source')}"]
    return shlex.join(args)


def update_table(updates: dict[str, dict]) -> str:
    """Update churn v1 -> v2 beside replica PD, per variant (Markdown)."""
    from recsys.study.report import _ci

    lines = ["#### The update users see: v1 -> v2 (warm start on the next window) beside replica PD", "",
             "| variant | replica PD of v1 at its last step [95% CI] | update churn v1->v2: relative PD "
             "[95% CI] | flip rate @0.5 | AUC v1 | AUC v2 |", "|---|---:|---:|---:|---:|---:|"]
    for name, u in updates.items():
        c = u["churn"]
        lines.append(f"| `{name}` | {_ci(u['replica_pd'], pct=True)} | {_ci(c['relative_pd'], pct=True)} | "
                     f"{_ci(c['flip_rate'], pct=True)} | {u['auc_v1']:.4f} | {u['auc_v2']:.4f} |")
    lines += ["", "Update churn: one chain per variant (replica 1 and its v2), CIs over eval examples only; "
              "`recsys study --sources update` measures it across chains."]
    return "\n".join(lines) + "\n"


def _last_json(text: str):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    start = text.find("{")
    return json.loads(text[start:]) if start >= 0 else {}


def _find(obj, key: str):
    """The first numeric value under ``key`` (or ``key``/"mean") anywhere in a JSON object."""
    if isinstance(obj, dict):
        if key in obj:
            v = obj[key]
            if isinstance(v, int | float):
                return float(v)
            if isinstance(v, dict) and isinstance(v.get("mean"), int | float):
                return float(v["mean"])
        for v in obj.values():
            found = _find(v, key)
            if found is not None:
                return found
    return None

"""Train an export's recorded config again: in this process for one worker, on the supervised local
cluster (:mod:`recsys.launch.local`, as the study runs its multi-worker replicas) for more."""

from __future__ import annotations

import dataclasses
import os
import sys

from recsys.config.schema import Experiment


def rebuild(config: Experiment, output: str, workers: int) -> tuple[str, str]:
    """Train ``config`` into ``<output>/model`` on ``workers`` workers; (export path, the command)."""
    from recsys.config import loading

    model_dir = os.path.join(output, "model")
    config = dataclasses.replace(config, export=dataclasses.replace(config.export, base_dir="", version=0))
    os.makedirs(model_dir, exist_ok=True)
    config_path = loading.save(config, model_dir)
    command = [sys.executable, "-m", "recsys.cli", "train", f"--config={config_path}",
               f"--model_dir={model_dir}"]
    shown = f"recsys train --config={config_path} --model_dir={model_dir}"
    if workers <= 1:
        from recsys.train.trainer import train

        result = train(config, model_dir)
        path = result.export_path
    else:
        from recsys.launch.local import LocalJobSpec, run_local_job
        from recsys.train.run_dir import RunDir

        job = run_local_job(LocalJobSpec(command=command, num_workers=workers, stream_logs=False,
                                         log_dir=os.path.join(output, "workers"), model_dir=model_dir,
                                         backup_dir=RunDir(model_dir).backup))
        if not job.ok:
            raise RuntimeError(f"the {workers}-worker rebuild failed: {job.message}")
        path = job.export_path
        shown = f"{shown}  (on {workers} workers of the local cluster, recsys.launch.local)"
    if not path:
        raise RuntimeError(f"the rebuild in {model_dir} wrote no export")
    return path, shown

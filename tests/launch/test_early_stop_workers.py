"""Early stopping on two real MultiWorkerMirroredStrategy workers: the job stops at the step one process
stops at and keeps the same best step; killed (submitter and workers) before its stop and submitted
again, it stops at the same step with the same weights digest."""

from __future__ import annotations

import json

from tests.train.conftest import BEST, EARLY, SETS, STOP, make_early_stopping_data


def submit_args(data: str, model_dir) -> list[str]:
    # the export is not what this test checks
    sets = [f"data.spec_dir={data}", *SETS, *EARLY, "train.verbose=1", "export.enabled=false"]
    return ["--config", "synthetic_small", *[f"--set={s}" for s in sets], "--workers", "2",
            "--model_dir", str(model_dir), "--grace_period", "2", "--status_every", "1000",
            "--heartbeat_every", "1", "--stream_heartbeats", "--backoff_delay", "0", "--backoff_limit", "3"]


def test_two_workers_stop_where_one_process_does_and_resume_to_the_same_stop(run_once, submit_factory,
                                                                            tmp_path):
    data = str(run_once("early-stopping-data", make_early_stopping_data) / "data")
    reference = submit_factory(submit_args(data, tmp_path / "ref"))
    assert reference.finish(300) == 0, reference.tail()
    ref = json.loads((tmp_path / "ref" / "fingerprint.json").read_text())
    es = ref["early_stopping"]
    assert ref["num_workers"] == 2 and ref["final_step"] == STOP
    assert es["stopped_step"] == STOP and es["best_step"] == BEST and not es["hit_max"]
    job = submit_factory(submit_args(data, tmp_path / "m"))
    # After the evaluations (and backups) at 12 and 16, before the stop at 20: worker 1's heartbeats.
    job.wait_for(r"^\[worker-1\] recsys-heartbeat step=1[3-9] phase=train", 240)
    job.kill()
    again = submit_factory(submit_args(data, tmp_path / "m"))
    again.wait_for(r"holds an unfinished run of this config: it resumes", 60)
    assert again.finish(300) == 0, again.tail()
    fp = json.loads((tmp_path / "m" / "fingerprint.json").read_text())
    assert len(fp["resumes"]) == 1 and 12 <= fp["resumes"][0]["step"] < STOP
    assert fp["early_stopping"] == es and fp["weights_sha256"] == ref["weights_sha256"]

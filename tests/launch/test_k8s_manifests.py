"""``recsys submit --cluster kubernetes --dry_run``: the rendered TFJob / Indexed Job parsed back and checked.

The Indexed Job's TF_CONFIG snippet is run with /bin/sh for every completion index (with a fake
``recsys`` on PATH that prints what it got), and the resulting JSON is parsed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from recsys.launch import k8s_manifests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = "configs/synthetic_small.yaml"


def _submit(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "recsys.cli", "submit", "--cluster", "kubernetes",
                           "--config", CONFIG, "--dry_run", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _render(*args: str) -> list[dict]:
    return list(yaml.safe_load_all(_submit(*args).stdout))


def _container(pod_spec: dict) -> dict:
    (container,) = pod_spec["containers"]
    return container


def _check_pod(pod: dict, gpus: int, pvc: str = "recsys-data", mount: str = "/mnt/recsys") -> dict:
    c = _container(pod)
    assert c["name"] == "tensorflow" and c["image"] == "registry.example.com/recsys-trainer:1"
    assert c["ports"] == [{"name": "tfjob-port", "containerPort": 2222, "protocol": "TCP"}]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == str(gpus)
    assert c["resources"]["requests"] == {"cpu": "8", "memory": "32Gi"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": pvc}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts["data"] == mount and mounts["config"] == "/etc/recsys" and mounts["dshm"] == "/dev/shm"
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    return c


GPU_ARGS = ["--image", "registry.example.com/recsys-trainer:1", "--gpus", "2", "--cpu", "8",
            "--memory", "32Gi", "--pvc", "recsys-data", "--namespace", "ml", "--set", "train.steps=100",
            "--model_dir", "/mnt/recsys/runs/a"]


def test_tfjob(tmp_path):
    docs = _render("--workers", "4", "--name", "job-a", "--backoff_limit", "5", *GPU_ARGS)
    assert [(d["apiVersion"], d["kind"]) for d in docs] == [("v1", "ConfigMap"), ("kubeflow.org/v1", "TFJob")]
    cm, job = docs
    assert all(d["metadata"]["namespace"] == "ml" for d in docs)
    assert cm["metadata"]["name"] == "job-a-config"
    with open(os.path.join(REPO, CONFIG)) as fh:
        assert cm["data"]["config.yaml"] == fh.read()  # the same config file, mounted
    assert job["metadata"]["name"] == "job-a"
    assert job["spec"]["runPolicy"]["backoffLimit"] == 5
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]
    # Only Worker replicas: worker 0 is the chief, and the operator sets TF_CONFIG.
    assert list(job["spec"]["tfReplicaSpecs"]) == ["Worker"]
    assert worker["replicas"] == 4 and worker["restartPolicy"] == "OnFailure"
    c = _check_pod(worker["template"]["spec"], gpus=2)
    assert c["command"] == ["recsys"]
    assert c["args"] == ["train", "--config", "/etc/recsys/config.yaml", "--set=train.steps=100",
                         "--set=determinism.collective=NCCL", "--model_dir", "/mnt/recsys/runs/a"]
    assert not any(e["name"] == "TF_CONFIG" for e in c["env"])
    # The container's arguments are accepted by the real `recsys train` (config from the ConfigMap).
    (tmp_path / "config.yaml").write_text(cm["data"]["config.yaml"])
    args = [str(tmp_path / "config.yaml") if a == "/etc/recsys/config.yaml" else a for a in c["args"]]
    proc = subprocess.run([sys.executable, "-m", "recsys.cli", *args, "--print_config"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)
    assert resolved["train"]["steps"] == 100 and resolved["determinism"]["collective"] == "NCCL"


def test_indexed_job_tf_config_for_every_index(tmp_path):
    docs = _render("--k8s_kind", "indexedjob", "--workers", "3", "--name", "job-b", *GPU_ARGS)
    assert [(d["apiVersion"], d["kind"]) for d in docs] == [
        ("v1", "ConfigMap"), ("v1", "Service"), ("batch/v1", "Job")]
    _, svc, job = docs
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == 3
    assert spec["backoffLimit"] == 3 * 3  # --backoff_limit restarts of all 3 workers
    assert spec["podFailurePolicy"]["rules"][0] == {"action": "Ignore",
                                                    "onPodConditions": [{"type": "DisruptionTarget",
                                                                         "status": "True"}]}
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["subdomain"] == svc["metadata"]["name"] == "job-b"
    # A headless Service selecting exactly the job's pods, with the worker port.
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    labels = spec["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert svc["spec"]["ports"] == [{"name": "tfjob-port", "port": 2222, "targetPort": 2222}]
    c = _check_pod(pod, gpus=2)

    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "recsys").write_text('#!/bin/sh\necho "$TF_CONFIG"\nfor a in "$@"; do echo "ARG:$a"; done\n')
    (fake_bin / "recsys").chmod(0o755)
    env = {e["name"]: e["value"] for e in c["env"]}
    hosts = [f"job-b-{i}.job-b:2222" for i in range(3)]  # pod hostname <job>-<i>, subdomain <service>
    for index in range(3):
        run_env = dict(env, JOB_COMPLETION_INDEX=str(index), PATH=f"{fake_bin}:{os.environ['PATH']}")
        proc = subprocess.run(c["command"] + c["args"], env=run_env, capture_output=True, text=True,
                              timeout=30, check=True)
        lines = proc.stdout.splitlines()
        assert lines[0].startswith("TF_CONFIG=")  # the snippet logs what it built
        tf_config = json.loads(lines[1])
        assert tf_config == {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
        assert [x[4:] for x in lines[2:]] == c["args"]
    # Without a completion index the snippet refuses to start rather than guess.
    proc = subprocess.run(c["command"] + c["args"], env=dict(env, PATH=f"{fake_bin}:{os.environ['PATH']}"),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "JOB_COMPLETION_INDEX" in proc.stderr


def test_cpu_only_job_has_no_gpu_settings():
    docs = _render("--workers", "2", "--name", "cpu-job", "--gpus", "0", "--image", "img:1",
                   "--model_dir", "gs://bucket/runs/c")
    pod = docs[-1]["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    c = _container(pod)
    assert "nvidia.com/gpu" not in c["resources"]["limits"] and "tolerations" not in pod
    assert not any("collective" in a for a in c["args"])
    assert {v["name"] for v in pod["volumes"]} == {"config"}  # no PVC asked for: only the config


def test_cluster_config_file_with_flag_overrides(tmp_path):
    cluster = tmp_path / "gpu-cluster.yaml"
    cluster.write_text("image: registry.example.com/recsys-trainer:1\nnamespace: ml\ngpus: 4\n"
                       "pvc: shared\nmount_path: /data\nk8s_kind: indexedjob\nworkers: 8\n")
    docs = _render("--cluster_config", str(cluster), "--gpus", "1", "--name", "cfg-job",
                   "--model_dir", "/data/runs/x")
    job = docs[-1]
    assert job["kind"] == "Job" and job["metadata"]["namespace"] == "ml"
    assert job["spec"]["completions"] == 8
    c = _container(job["spec"]["template"]["spec"])
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"  # the flag wins over the file
    assert {m["name"]: m["mountPath"] for m in c["volumeMounts"]}["data"] == "/data"
    bad = tmp_path / "bad.yaml"
    bad.write_text("imagee: x\n")
    proc = _submit("--cluster_config", str(bad), "--model_dir", "/x", check=False)
    assert proc.returncode != 0 and "unknown keys ['imagee']" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--name", "Bad_Name", "--image", "i"], "must be a DNS label"),
    (["--name", "ok"], "an image is required"),
])
def test_invalid_jobs_are_rejected(args, message):
    proc = _submit(*args, "--model_dir", "/x", check=False)
    assert proc.returncode != 0 and message in proc.stderr


def test_default_name_is_a_dns_label():
    import datetime

    from recsys.cli.submit import default_job_name

    name = default_job_name("Synthetic_Small", datetime.datetime(2026, 1, 2, 3, 4, 5))
    assert name == "recsys-synthetic-small-20260102-030405"
    spec = k8s_manifests.K8sJobSpec(name=name, image="i", num_workers=1, train_args=["train"])
    k8s_manifests.validate(spec)

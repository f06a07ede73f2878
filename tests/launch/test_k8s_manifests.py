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
    assert [(d["apiVersion"], d["kind"]) for d in docs] == [
        ("v1", "ConfigMap"), ("networking.k8s.io/v1", "NetworkPolicy"), ("kubeflow.org/v1", "TFJob")]
    cm, _, job = docs
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
        ("v1", "ConfigMap"), ("networking.k8s.io/v1", "NetworkPolicy"), ("v1", "Service"),
        ("batch/v1", "Job")]
    _, _, svc, job = docs
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
    proc = _submit(*args, "--model_dir", "/x", "--allow_ephemeral_model_dir", check=False)
    assert proc.returncode != 0 and message in proc.stderr


@pytest.mark.parametrize("model_dir, pvc, ok", [
    ("/mnt/recsys/runs/a", "recsys-data", True),   # on the mounted claim
    ("gs://bucket/runs/a", "", True),              # a bucket outlives the pod
    ("/mnt/recsys/runs/a", "", False),             # the path of the mount, but nothing mounted there
    ("/tmp/runs/a", "recsys-data", False),         # a claim is mounted, the model_dir is beside it
    ("/mnt/recsys-other/a", "recsys-data", False),  # a prefix of the name is not a parent directory
    ("/mnt/recsys/../tmp/a", "recsys-data", False),
    ("runs/a", "recsys-data", False),              # relative to the container's working directory
])
def test_a_model_dir_the_pod_would_lose_is_refused(model_dir, pvc, ok):
    """Backups and the export on the pod's own disk: every restart starts again from step 0."""
    spec = k8s_manifests.K8sJobSpec(name="j", image="i", num_workers=1, train_args=["train"],
                                    model_dir=model_dir, pvc=pvc)
    if ok:
        k8s_manifests.validate(spec)
    else:
        with pytest.raises(ValueError, match="on no persistent volume"):
            k8s_manifests.validate(spec)
        k8s_manifests.validate(k8s_manifests.K8sJobSpec(  # the user's explicit choice is accepted
            name="j", image="i", num_workers=1, train_args=["train"], model_dir=model_dir, pvc=pvc,
            allow_ephemeral_model_dir=True))


def test_submit_refuses_an_ephemeral_model_dir_and_says_how_to_fix_it():
    proc = _submit("--image", "i", "--model_dir", "/tmp/run", check=False)
    assert proc.returncode != 0 and proc.stdout == ""
    assert "--pvc NAME" in proc.stderr and "--allow_ephemeral_model_dir" in proc.stderr
    docs = _render("--image", "i", "--model_dir", "/tmp/run", "--allow_ephemeral_model_dir")
    assert docs[-1]["kind"] == "TFJob"


@pytest.mark.parametrize("kind", ["tfjob", "indexedjob"])
def test_pods_meet_the_restricted_pod_security_standard(kind):
    """The restricted profile's checks (kubernetes.io/docs/concepts/security/pod-security-standards),
    and no service-account token: the trainer never calls the API."""
    docs = _render("--k8s_kind", kind, "--workers", "2", "--name", "sec", *GPU_ARGS)
    job = docs[-1]
    pod = (job["spec"]["template"] if kind == "indexedjob"
           else job["spec"]["tfReplicaSpecs"]["Worker"]["template"])["spec"]
    assert pod["automountServiceAccountToken"] is False
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] > 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    allowed_volumes = {"configMap", "emptyDir", "persistentVolumeClaim", "secret", "projected",
                       "downwardAPI", "csi", "ephemeral"}
    assert all(set(v) - {"name"} <= allowed_volumes for v in pod["volumes"]), pod["volumes"]
    c = _container(pod)
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc.get("privileged") is not True and "add" not in sc["capabilities"]
    assert all("hostPort" not in p for p in c["ports"])


def test_only_the_jobs_own_pods_reach_the_worker_port():
    docs = _render("--workers", "2", "--name", "np", *GPU_ARGS)
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    job = docs[-1]
    pod_labels = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()  # the policy selects the job's pods ...
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": selector}}]  # ... admits only them ...
    assert rule["ports"] == [{"protocol": "TCP", "port": 2222}]  # ... on the worker port only
    assert selector == {"recsys.io/job": "np"}


def test_default_name_is_a_dns_label():
    import datetime

    from recsys.cli.submit import default_job_name

    name = default_job_name("Synthetic_Small", datetime.datetime(2026, 1, 2, 3, 4, 5))
    assert name == "recsys-synthetic-small-20260102-030405"
    spec = k8s_manifests.K8sJobSpec(name=name, image="i", num_workers=1, train_args=["train"])
    k8s_manifests.validate(spec)

"""Quiet by default: the real output of ``recsys preprocess / train / serve / query`` has no start-up
chatter; real errors still show; ``recsys -v`` brings TensorFlow's logs back (recsys/quiet.py)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

import pytest

from recsys import quiet
from tests.noise import noise_lines

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECSYS = [sys.executable, "-m", "recsys.cli"]
# What TensorFlow 2.21 prints on a CPU-only machine at import (copied from a real run), then ours.
TRANSCRIPT = b"""WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796160228.024783    8658 port.cc:153] oneDNN custom operations are on. You may see...
I0000 00:00:1796160228.025087    8658 cudart_stub.cc:31] Could not find cuda drivers on your machine
I0000 00:00:1796160401.005761   19288 cpu_feature_guard.cc:227] This TensorFlow binary is optimized
To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow.
E0000 00:00:1796160231.977858    8658 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)
E0000 00:00:1796160231.977858    8658 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting
W0000 00:00:1796159454.127883    6977 op_kernel.cc:1858] OP_REQUIRES failed at example_parsing_ops.cc:96
\t [[{{function_node __inference__classify_179}}{{node ParseExample/ParseExampleV2}}]]
2024-01-02 10:11:12.123456: I tensorflow/core/platform/cpu_feature_guard.cc:182] old-style line
E0000 00:00:1796160231.977858    8658 coordination_service.cc:100] Barrier timed out: a real error
E0000 00:00:1796160232.123456    8658 tensor.h:692] Tensor RefCount not reliable. ...
preprocess synthetic -> out/data
Traceback (most recent call last):
\tFile "x.py", line 1
ValueError: a real Python error
"""
KEPT_ON_CPU = [
    b"E0000 00:00:1796160231.977858    8658 coordination_service.cc:100] Barrier timed out: a real error\n",
    b"preprocess synthetic -> out/data\n",
    b"Traceback (most recent call last):\n",
    b'\tFile "x.py", line 1\n',
    b"ValueError: a real Python error\n",
]


def test_filter_drops_chatter_and_keeps_real_errors():
    kept = list(quiet.filter_lines(TRANSCRIPT.splitlines(keepends=True), cpu_only=True))
    assert kept == KEPT_ON_CPU
    with_gpu = list(quiet.filter_lines(TRANSCRIPT.splitlines(keepends=True), cpu_only=False))
    assert [line for line in with_gpu if b"cuInit" in line] == [TRANSCRIPT.splitlines(keepends=True)[5]]
    assert noise_lines(b"".join(kept).decode()) == []  # the test's own patterns agree
    assert len(noise_lines(TRANSCRIPT.decode())) == 9
    # a TF_CPP_MIN_LOG_LEVEL the user set decides: 0 keeps everything, 1 drops INFO only
    lines = TRANSCRIPT.splitlines(keepends=True)
    assert list(quiet.filter_lines(lines, cpu_only=True, min_level=0)) == lines
    warn = [line for line in quiet.filter_lines(lines, cpu_only=True, min_level=1) if line not in KEPT_ON_CPU]
    assert [line[:5] for line in warn] == [b"E0000", b"E0000", b"W0000", b"\t [[{", b"E0000"]


def test_a_dead_peers_grpc_wall_is_dropped_but_other_errors_stay():
    """What the surviving worker printed when its peer was SIGKILLed (copied from a real run)."""
    wall = (b"E0000 00:00:1796398530.608525    8575 base_collective_executor.cc:252] BaseCollectiveExecutor::"
            b"StartAbort UNAVAILABLE: recvmsg:Connection reset by peer\n"
            b"Additional GRPC error information from remote target /job:worker/replica:0/task:0 while "
            b"calling /tensorflow.WorkerService/CompleteInstance:\n"
            b':UNKNOWN:Error received from peer  {grpc_status:14, grpc_message:"recvmsg:Connection reset by '
            b'peer"}\n')
    other = b"E0000 00:00:1796398530.7    8575 coordination_service.cc:100] Barrier timed out\n"
    ours = b"recsys train: lost a peer worker (recvmsg:Connection reset by peer); the job resumes ...\n"
    lines = (wall * 3 + other + ours).splitlines(keepends=True)
    assert list(quiet.filter_lines(lines, cpu_only=True)) == [other, ours]
    assert list(quiet.filter_lines(lines, cpu_only=True, min_level=0)) == lines  # the user asked for all


def test_a_hung_peer_reported_by_the_coordination_service_is_dropped_too():
    """What the chief printed when its peer was SIGSTOPped (copied from a real run, 2026-12-04)."""
    wall = (b"E0000 00:00:1796411409.321974   17659 base_collective_executor.cc:252] "
            b"BaseCollectiveExecutor::StartAbort UNAVAILABLE: Error reported from /job:worker/task:1: "
            b"The following tasks are unhealthy (stopped sending heartbeats):\n"
            b"/job:worker/replica:0/task:1\n"
            b"The tasks have crashed. Check the task logs for an earlier error, or scheduler events "
            b"(e.g. preemption, eviction) to debug further. "
            b"[type.googleapis.com/tensorflow.CoordinationServiceError="
            b"'\"\\n\\n\\x06worker\\x10\\x01']\n"
            b"E0000 00:00:1796411409.322561   17667 ring_alg.cc:291] Aborting RingReduce with CANCELLED: "
            b"CANCELLED\n"
            b"Additional GRPC error information from remote target /job:worker/replica:0/task:1 while "
            b"calling /tensorflow.WorkerService/RecvBuf:\n"
            b':UNKNOWN:Error received from peer  {grpc_status:1, grpc_message:"CANCELLED"} '
            b"[type.googleapis.com/tensorflow.DerivedStatus='']\n")
    ours = (b"recsys train: lost a peer worker (Error reported from /job:worker/task:1: The following tasks "
            b"are unhealthy (stopped sending heartbeats):); the job resumes from the last backup when "
            b"restarted\n")
    lines = (wall + ours).splitlines(keepends=True)
    assert list(quiet.filter_lines(lines, cpu_only=True)) == [ours]
    assert list(quiet.filter_lines(lines, cpu_only=True, min_level=0)) == lines


def test_a_worker_outliving_the_finished_chief_drops_the_coordination_services_wall():
    """What worker 1 printed when it was still running after the chief finished and exited (copied from
    a real two-worker job on a loaded machine, 2026-12-04); the supervisor says it stopped it."""
    wall = (b"E0000 00:00:1796419482.796976   30402 base_collective_executor.cc:252] "
            b"BaseCollectiveExecutor::StartAbort UNAVAILABLE: Failed to send RPC to coordination service. "
            b"Either the leader task was preempted/died/restarted unexpectedly or this task is experiencing "
            b"network issues. Check earlier logs from 1) this task, 2) the leader (usually slice 0 task 0), "
            b"and 3) cluster scheduler to debug further.\n"
            b"Additional GRPC error information from remote target /job:worker/replica:0/task:0 while "
            b"calling /tensorflow.CoordinationService/Heartbeat:\n"
            b':UNKNOWN:Error received from peer  {grpc_message:"failed to connect to all addresses; last '
            b'error: UNKNOWN: ipv4:127.0.0.1:42933: Failed to connect to remote host: Connection refused", '
            b"grpc_status:14}\n")
    other = b"E0000 00:00:1796419482.9   30402 coordination_service.cc:100] Barrier timed out\n"
    lines = (wall + other).splitlines(keepends=True)
    assert list(quiet.filter_lines(lines, cpu_only=True)) == [other]
    assert list(quiet.filter_lines(lines, cpu_only=True, min_level=0)) == lines


def test_a_killed_peers_closed_port_is_dropped_too():
    """What worker 1 printed when the chief was SIGKILLed during a ring all-reduce (copied from a real
    two-worker job, 2026-12-04)."""
    refused = (b'{grpc_status:14, grpc_message:"failed to connect to all addresses; last error: UNKNOWN: '
               b'ipv4:127.0.0.1:43023: Failed to connect to remote host: Connection refused"}')
    detail = (b"Additional GRPC error information from remote target /job:worker/replica:0/task:0 while "
              b"calling /tensorflow.WorkerService/RecvBuf:\n:UNKNOWN:Error received from peer  "
              + refused + b"\n")
    wall = (b"E0000 00:00:1796425490.937298   23500 ring_alg.cc:291] Aborting RingReduce with UNAVAILABLE: "
            b"failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:43023: Failed to "
            b"connect to remote host: Connection refused\n" + detail
            + b"E0000 00:00:1796425490.937651   23500 base_collective_executor.cc:252] BaseCollectiveExecutor"
            b"::StartAbort UNAVAILABLE: failed to connect to all addresses; last error: UNKNOWN: "
            b"ipv4:127.0.0.1:43023: Failed to connect to remote host: Connection refused\n" + detail)
    ours = b"recsys train: lost a peer worker (failed to connect to all addresses); the job resumes ...\n"
    lines = (wall + ours).splitlines(keepends=True)
    assert list(quiet.filter_lines(lines, cpu_only=True)) == [ours]
    assert list(quiet.filter_lines(lines, cpu_only=True, min_level=0)) == lines


def test_the_retracing_warning_of_a_study_is_dropped():
    tf_file = "/venv/site-packages/tensorflow/python/eager/polymorphic_function/polymorphic_function.py"
    message = ("5 out of the last 9 calls to <function predict_fn.<locals>.call at 0x7efcb2ed6480> triggered "
               "tf.function retracing. Tracing is expensive and ...")
    assert not quiet._PythonNoise().filter(_record(logging.WARNING, tf_file, message))


@pytest.mark.parametrize(
    "argv,env,verbose,rest",
    [
        (["recsys", "train", "--x=1"], {}, False, ["recsys", "train", "--x=1"]),
        (["recsys", "-v", "train"], {}, True, ["recsys", "train"]),
        (["recsys", "--verbose", "query", "--rows=-"], {}, True, ["recsys", "query", "--rows=-"]),
        (["recsys", "train", "--verbosity=1"], {}, True, ["recsys", "train", "--verbosity=1"]),
        (["recsys", "train", "-v", "2"], {}, True, ["recsys", "train", "-v", "2"]),
        (["recsys", "train", "--verbosity", "0"], {}, False, ["recsys", "train", "--verbosity", "0"]),
        (["recsys", "train"], {"RECSYS_VERBOSE": "1"}, True, ["recsys", "train"]),
        (["recsys", "train"], {"RECSYS_VERBOSE": "0"}, False, ["recsys", "train"]),
    ],
)
def test_verbose_switches(monkeypatch, argv, env, verbose, rest):
    monkeypatch.delenv("RECSYS_VERBOSE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert quiet.wants_verbose(argv) == (verbose, rest)


def _record(level: int, path: str, message: str) -> logging.LogRecord:
    return logging.LogRecord("absl", level, path, 1, message, None, None)


def test_python_log_filter_keeps_ours_and_warnings():
    f = quiet._PythonNoise()
    tf_file = "/venv/site-packages/tensorflow/python/checkpoint/functional_saver.py"
    ours = os.path.join(REPO, "recsys", "cli", "train.py")
    assert not f.filter(_record(logging.INFO, tf_file, "Sharding callback duration: 33 microseconds"))
    assert f.filter(_record(logging.INFO, tf_file, "MultiWorkerMirroredStrategy with cluster_spec = {}"))
    assert f.filter(_record(logging.INFO, ours, "training 10 steps"))
    assert not f.filter(
        _record(
            logging.WARNING,
            "/b/__init__.py",
            "apitools not found, and bigquery client "
            "libraries are not available despite the import not raising an ImportError.",
        )
    )
    assert f.filter(_record(logging.WARNING, tf_file, "Your input ran out of data; interrupting training."))
    assert f.filter(_record(logging.ERROR, tf_file, "Skipping full serialization of TF-Keras layer x"))


def test_our_messages_print_without_the_absl_prefix(capfd):
    """absl's ``I1204 10:53:40.242405 140123337538432 preprocess.py:122]`` hides the message; warnings
    and errors still say what they are."""
    import subprocess

    body = ("from absl import app, logging\n"
            "def main(_):\n    logging.set_verbosity(logging.INFO)\n"
            "    logging.info('preprocess synthetic -> out/data')\n"
            "    logging.warning('rows dropped: 3'); logging.error('cannot write')\n"
            "app.run(main, argv=['x'])\n")
    ours = os.path.join(REPO, "recsys", "cli", "preprocess.py")  # the records come from one of our files
    code = f"from recsys import quiet; quiet.apply(False); exec(compile({body!r}, {ours!r}, 'exec'))"
    env = {k: v for k, v in os.environ.items() if k != "RECSYS_VERBOSE"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=60)
    assert proc.stderr.splitlines() == ["preprocess synthetic -> out/data", "warning: rows dropped: 3",
                                        "error: cannot write"]
    verbose = subprocess.run([sys.executable, "-c", code.replace("apply(False)", "apply(True)")],
                             capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert [line[0] for line in verbose.stderr.splitlines() if " preprocess.py:" in line] == ["I", "W", "E"]


CHILD = """
import os, subprocess, sys
from recsys import quiet
quiet.apply(False)
print(os.environ["TF_CPP_MIN_LOG_LEVEL"], flush=True)
noise = b"I0000 00:00:1796160228.024783    8658 port.cc:153] oneDNN custom operations are on.\\n"
os.write(2, noise + b"E0000 00:00:1.0    1 x.cc:1] real C++ error\\n")
subprocess.run([sys.executable, "-c", "import os; os.write(2, %r + b'worker error\\\\n')" % noise])
print(subprocess.run([sys.executable, "-c", "import os; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"],
                     capture_output=True, text=True).stdout.strip(), flush=True)
if sys.argv[1] == "kill":
    os.write(2, b"last words\\n")
    os.kill(os.getpid(), 9)
"""


@pytest.mark.parametrize(
    "user_level,how", [(None, "exit"), ("0", "exit"), (None, "kill"), ("recsys compat's 1", "exit")]
)
def test_apply_in_a_process_and_its_children(user_level, how):
    """fd-level filtering (C++ writes), inherited by child processes; the user's env wins, not the
    default a parent recsys process set; even a SIGKILLed process's last stderr lines get through."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "RECSYS_VERBOSE")}
    if user_level == "recsys compat's 1":  # started by a process that imported recsys.compat
        env.update(TF_CPP_MIN_LOG_LEVEL="1", RECSYS_DEFAULT_TF_CPP_MIN_LOG_LEVEL="1")
        user_level = None
    elif user_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = user_level
        env.pop("RECSYS_DEFAULT_TF_CPP_MIN_LOG_LEVEL", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, how], capture_output=True, env=env, cwd=REPO, timeout=60
    )
    want = user_level or "2"
    assert proc.stdout.decode().split() == [want, want]
    lines = proc.stderr.decode().splitlines()
    noise = "I0000 00:00:1796160228.024783    8658 port.cc:153] oneDNN custom operations are on."
    shown = [noise] if user_level == "0" else []  # the user asked for TensorFlow's INFO lines
    assert lines[: 4 if shown else 2] == [
        *shown,
        "E0000 00:00:1.0    1 x.cc:1] real C++ error",
        *shown,
        "worker error",
    ], proc.stderr
    assert lines[4 if shown else 2 :] == (["last words"] if how == "kill" else [])
    assert proc.returncode == (-signal.SIGKILL if how == "kill" else 0)


# The real commands' output (preprocess, train, serve, query, -v, a real error) is checked by the
# newcomer test, tests/test_first_hour.py, which runs each of them as a user types it.

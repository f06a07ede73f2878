"""Quiet by default: the ``recsys`` command hides third-party start-up chatter, never real problems.

A newcomer reads TensorFlow's C++ INFO lines, the ``cuInit`` error of a machine without a GPU, the
oneDNN notice and Beam's "apitools not found" warning as failures. :func:`apply` runs in the CLI
dispatcher before anything imports TensorFlow and:

- sets ``TF_CPP_MIN_LOG_LEVEL=2`` (C++ errors only, at run time) unless the user set it; a level
  the user set also decides which of the C++ lines below are dropped (0: none of the INFO ones);
- filters the process's stderr (fd 2, so C++ writes too) through a small child process that drops
  the lines TensorFlow prints at library load time whatever the log level (absl writes everything
  before ``absl::InitializeLog()``): C++ INFO/WARNING lines, the absl banner, CUDA registration
  noise, ``cuInit`` failures when the machine has no NVIDIA driver, and the gRPC errors of a worker
  whose peer died (the supervisor says which one). Every other line passes, in order: C++ errors,
  Python warnings and tracebacks, our own logs;
- drops Python INFO records of third-party code (TensorFlow's save/restore chatter; our own logs
  stay) and a short list of harmless warnings, Beam's apitools warning and ``tf.function
  retracing`` (a study builds new functions for every replica) among them.

Worker processes inherit the environment (``RECSYS_VERBOSE``, ``TF_CPP_MIN_LOG_LEVEL``) and stderr,
and run through the same dispatcher. ``recsys -v <subcommand>`` (or ``--verbose``, or the
subcommand's ``--verbosity=1``, or ``RECSYS_VERBOSE=1``) turns all of it off and TensorFlow logs
INFO again. Nothing here changes what TensorFlow does, only what it prints (oneDNN stays on).
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
import re
import subprocess
import sys

VERBOSE_ENV = "RECSYS_VERBOSE"
DEFAULT_LEVEL_ENV = "RECSYS_DEFAULT_TF_CPP_MIN_LOG_LEVEL"  # the TF_CPP_MIN_LOG_LEVEL recsys chose

# Lines dropped from stderr. C++ log lines (absl: "I0000 00:00:1796160228.024783   8658 port.cc:153] ",
# older TF: "2024-01-01 12:00:00.123456: I tensorflow/...") below TF_CPP_MIN_LOG_LEVEL (default 2 here:
# INFO and WARNING), from C++ sources only; the rest only at level 2 or above.
_CPP_LOG = re.compile(
    rb"^(?:([IW])\d{4} \d\d:\d\d:[\d.]+\s+\d+ [\w./+-]+\.(?:cc|cpp|cxx|c|h):\d+\] "
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IW]) [\w./+-]+\.(?:cc|cpp|c|h):\d+\] )"
)
_SEVERITY = {b"I": 0, b"W": 1}
_BANNER = re.compile(
    rb"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
)
_CUDA_NOISE = re.compile(
    rb"Unable to register cu(?:DNN|FFT|BLAS) factory|computation placer already registered"
)
# C++ ERROR lines that report nothing wrong: a checkpoint restore prints one per restored variable.
_HARMLESS_CPP_ERRORS = re.compile(rb"^E\d{4} .*tensor\.h:\d+\] Tensor RefCount not reliable")
# A worker's collectives aborting because a peer died: one line per pending collective (a wall), with
# gRPC's details on lines of their own. The supervisor names the worker that died and the surviving
# worker says in one line that it lost a peer (recsys/cli/train.py).
# TensorFlow's coordination service reports a peer that stopped sending heartbeats (hung or killed) the
# same way, naming the task on a line of its own; a worker still running when the chief has finished
# and exited finds the coordination service (hosted by the chief) gone, and one whose collective was
# in flight when its peer was killed finds the peer's port closed ("failed to connect").
_PEER_GONE = re.compile(rb"^E\d{4} .*\] .*(?:Connection reset by peer|Socket closed|Broken pipe"
                        rb"|The following tasks are unhealthy|Aborting RingReduce with [A-Z_]+:"
                        rb"|Failed to send RPC to coordination service|failed to connect to all addresses)")
_CUDA_ABSENT_NOISE = re.compile(rb"failed call to cuInit|Could not find cuda drivers|cuda_diagnostics")
# A dropped C++ line may continue on lines of its own (cpu_feature_guard, op errors with a graph trace).
_CONTINUATION = re.compile(
    rb"^(?:\t|To enable the following instructions:|Additional GRPC error information from remote target"
    rb"|:UNKNOWN:Error received from peer|/job:\w+/replica:\d+/task:\d+$|The tasks have crashed\. )"
)

# Python log records from code other than ours: INFO is dropped (except the line the local-cluster
# launcher waits for), and these harmless warnings; our own records and every error pass.
_KEEP_INFO = re.compile(r"MultiWorkerMirroredStrategy with cluster_spec")
_HARMLESS_WARNINGS = re.compile(
    r"Skipping full serialization of (?:TF-)?Keras layer"
    r"|Compiled the loaded model, but the compiled metrics have yet to be built"
    r"|apitools not found, and bigquery client libraries are not available"
    r"|Callback method `on_\w+` is slow compared to the batch time"  # tiny batches: timing alone
    r"|calls to <function .*> triggered tf\.function retracing"  # a study builds each replica's functions
)
_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_OWN_DIRS = tuple(
    os.path.join(_PARENT, name) + os.sep for name in ("recsys", "pipelines", "serving", "benchmarks")
)


def cuda_absent() -> bool:
    """True on a machine without an NVIDIA driver, where CUDA's start-up errors mean nothing."""
    return not (os.path.exists("/proc/driver/nvidia") or glob.glob("/dev/nvidia[0-9]*"))


def is_noise(line: bytes, cpu_only: bool, min_level: int = 2) -> bool:
    """Whether one stderr line (no newline) is chatter at TF_CPP_MIN_LOG_LEVEL ``min_level``."""
    log = _CPP_LOG.match(line)
    if log:
        return _SEVERITY[log.group(1) or log.group(2)] < min_level
    if min_level < 1:
        return False
    if _BANNER.match(line):
        return True
    return min_level >= 2 and bool(_CUDA_NOISE.search(line) or _HARMLESS_CPP_ERRORS.match(line)
                                   or _PEER_GONE.match(line)
                                   or (cpu_only and _CUDA_ABSENT_NOISE.search(line)))


def filter_lines(lines, cpu_only: bool, min_level: int = 2):
    """Yield the lines (bytes, with their endings) that are not noise, continuation lines included."""
    dropping = False
    for line in lines:
        body = line.rstrip(b"\r\n")
        if dropping and _CONTINUATION.match(body):
            continue
        dropping = is_noise(body, cpu_only, min_level)
        if not dropping:
            yield line


def is_verbose() -> bool:
    """Whether this process runs verbose (``recsys -v``; set by :func:`apply`, inherited by workers)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def wants_verbose(argv: list[str]) -> tuple[bool, list[str]]:
    """(verbose?, argv without the dispatcher's -v/--verbose) from ``recsys [-v] <sub> [flags]``."""
    argv = list(argv)
    verbose = is_verbose()
    while len(argv) > 1 and argv[1] in ("-v", "--verbose"):
        verbose = True
        del argv[1]
    rest = argv[2:]
    for i, arg in enumerate(rest):  # absl's own --verbosity / -v on the subcommand (1 = debug)
        name, eq, value = arg.partition("=")
        if name in ("--verbosity", "-v"):
            value = value if eq else (rest[i + 1] if i + 1 < len(rest) else "")
            try:
                verbose = verbose or int(value) >= 1
            except ValueError:
                pass
    return verbose, argv


class _PlainFormat(logging.Formatter):
    """Log records as a person reads them: the message alone (``warning: `` / ``error: `` before the
    higher levels), without absl's ``I1204 10:53:40.242405 140123337538432 preprocess.py:122]``."""

    def __init__(self) -> None:
        super().__init__("%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return f"{record.levelname.lower()}: {text}" if record.levelno >= logging.WARNING else text


class _PythonNoise(logging.Filter):
    """Drops third-party INFO records (one line the launcher needs excepted) and known warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR or record.pathname.startswith(_OWN_DIRS):
            return True
        message = record.getMessage()
        if record.levelno < logging.WARNING:
            return bool(_KEEP_INFO.search(message))
        return not _HARMLESS_WARNINGS.search(message)


def _min_level() -> int:
    """TF_CPP_MIN_LOG_LEVEL as a number (what the user set, else ours)."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    except ValueError:
        return 2


def _start_filter() -> None:
    """Point fd 2 at a pipe read by a child process that copies all but the noise to the old fd 2."""
    try:
        saved = os.dup(2)  # fails when there is no stderr: then there is nothing to filter
    except OSError:
        return
    read_end, write_end = os.pipe()
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "recsys.quiet", "1" if cuda_absent() else "0", str(_min_level())],
            env=dict(os.environ, PYTHONPATH=path),  # finds this module however the parent found it
            stdin=read_end,
            stdout=saved,  # the real stderr
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to the command, not to its stderr
        )
    except OSError:  # no way to start the filter: leave stderr as it is
        for fd in (saved, read_end, write_end):
            os.close(fd)
        return
    os.close(read_end)
    if sys.stderr is not None:
        sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)

    def stop() -> None:
        try:
            if sys.stderr is not None:
                sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)  # closes our write end: the filter drains and exits
        try:
            child.wait(timeout=2)  # longer only if a process we started still holds the pipe
        except subprocess.TimeoutExpired:
            pass

    atexit.register(stop)


def _default_level(level: str) -> None:
    """Set TF_CPP_MIN_LOG_LEVEL unless the user did; a value a recsys process set (marked) is ours."""
    current = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    if current is None or current == os.environ.get(DEFAULT_LEVEL_ENV):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = level
        os.environ[DEFAULT_LEVEL_ENV] = level


def apply(verbose: bool) -> None:
    """Set up quiet (or verbose) output for this process and its children; call before TF loads."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
        _default_level("0")
        return
    _default_level("2")
    from absl import logging as absl_logging  # no TensorFlow; absl's handler prints every record

    noise = _PythonNoise()
    absl_logging.get_absl_handler().addFilter(noise)
    absl_logging.get_absl_handler().setFormatter(_PlainFormat())
    for name in ("", "tensorflow"):  # records logged straight to these, whatever the handler
        logging.getLogger(name).addFilter(noise)
    _start_filter()


def _main() -> None:
    """The filter process: stdin -> stdout, line by line, without the noise."""
    cpu_only, min_level = sys.argv[1] == "1", int(sys.argv[2])
    out = sys.stdout.buffer
    for line in filter_lines(iter(sys.stdin.buffer.readline, b""), cpu_only, min_level):
        out.write(line)
        out.flush()


if __name__ == "__main__":
    _main()

"""Run ``recsys.train.train`` once and print the peak RSS (VmHWM) as ``PEAK_RSS_BYTES <n>``.

``python rss_worker.py SPEC_DIR MODEL_DIR [--set k=v ...]``: a subprocess of test_plan_memory.py, so
each table size gets a fresh TF runtime and its own high-water mark.
"""

from __future__ import annotations

import sys

import recsys.compat  # noqa: F401  (Keras 2 before TensorFlow)


def peak_rss_bytes() -> int:
    """VmHWM of this process, in bytes (Linux)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv: list[str]) -> None:
    from recsys import config as cfg
    from recsys.train import train

    spec_dir, model_dir, overrides = argv[0], argv[1], argv[2:]
    train(cfg.load(None, [f"data.spec_dir={spec_dir}", *overrides]), model_dir)
    print(f"PEAK_RSS_BYTES {peak_rss_bytes()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

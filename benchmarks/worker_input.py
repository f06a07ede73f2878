"""CPU time per training step of one worker's input stream (no model), in CPU-ms per step of a
two-worker job: what global-batch sharding costs a worker for parsing the other worker's rows.

    taskset -c 1 .venv/bin/python benchmarks/worker_input.py --data_dir DIR   # DIR: benchmarks/train.py's

Run it pinned to one CPU, like a worker of ``recsys submit --pin_cpus`` (2 TensorFlow threads).
"""

from __future__ import annotations

import argparse
import time

import recsys.compat  # noqa: F401  (Keras 2 before TensorFlow)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", required=True, help="benchmarks/train.py's synthetic data (columnar)")
    p.add_argument("--batch", type=int, default=4096, help="global batch")
    p.add_argument("--steps", type=int, default=96, help="timed global steps per measurement")
    p.add_argument("--repeats", type=int, default=3, help="rounds over the cases (min is reported)")
    args = p.parse_args(argv)
    from pipelines import feature_spec
    from recsys.compat import tf
    from recsys.data.stream import StreamSpec, train_stream

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    spec = feature_spec.load(args.data_dir)
    g = args.batch
    cases = {  # name -> (stream, elements per two-worker step)
        "read+parse+batch all rows (unshuffled)": (StreamSpec(g, 1, 0, columnar=True), 1),
        "1 worker: whole stream": (StreamSpec(g, 1, 65536, columnar=True), 1),
        "2 workers, global_batch: worker 0": (StreamSpec(g, 1, 65536, num_workers=2, columnar=True), 1),
        "2 workers, file: worker 0": (StreamSpec(g, 1, 65536, "file", num_workers=2, columnar=True), 1),
    }
    best: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for name, (stream, per_step) in cases.items():
            it = iter(train_stream(spec, stream, 0))
            for _ in range(4):  # warm up
                next(it)
            start = time.process_time()
            for _ in range(args.steps * per_step):
                next(it)
            best.setdefault(name, []).append(1e3 * (time.process_time() - start) / args.steps)
    for name, ms in best.items():
        print(f"{name:42s} CPU ms per step: min {min(ms):6.2f}  ({' '.join(f'{m:.2f}' for m in ms)})")


if __name__ == "__main__":
    main()

"""Serving benchmark: gRPC Predict latency (batch 1, batch 256) and QPS with 16 concurrent clients.

    .venv/bin/python benchmarks/serving_latency.py [--json PATH] [--duration 5]

Starts ``recsys serve`` as a subprocess (batching off, then on) on 127.0.0.1 with the tiny test
model, and measures from a separate load-generator process (grpc.aio, pre-serialized requests, so
the client spends no time building protos). Client and server share the machine's cores. The
in-process figure is the loaded signature's session callable on the same arrays, without gRPC.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHOD = "/tensorflow.serving.PredictionService/Predict"


def _percentiles(latencies: list[float]) -> dict[str, float]:
    import numpy as np

    ms = np.asarray(latencies) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "count": int(ms.size),
    }


async def _aio_load(address: str, payload: bytes, concurrency: int, duration: float, warmup: float) -> dict:
    import grpc

    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        latencies: list[float] = []
        errors = 0
        start = time.perf_counter()
        measure_from = start + warmup
        stop_at = measure_from + duration

        async def worker():
            nonlocal errors
            while True:
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    return
                try:
                    await call(payload, timeout=30)
                except grpc.RpcError:
                    errors += 1
                    continue
                t1 = time.perf_counter()
                if t0 >= measure_from:
                    latencies.append(t1 - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {"latencies": latencies, "errors": errors, "seconds": duration}


def _load_process(address: str, payload: bytes, concurrency: int, duration: float, warmup: float, queue):
    queue.put(asyncio.run(_aio_load(address, payload, concurrency, duration, warmup)))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def load(
    address: str,
    payload: bytes,
    concurrency: int,
    duration: float,
    warmup: float = 1.0,
    server_pid: int | None = None,
) -> dict:
    """Run the load generator in its own process; return QPS and latency percentiles."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_load_process, args=(address, payload, concurrency, duration, warmup, queue))
    proc.start()
    cpu0 = _cpu_seconds(server_pid) if server_pid else 0.0
    result = queue.get(timeout=duration + warmup + 120)
    cpu1 = _cpu_seconds(server_pid) if server_pid else 0.0
    proc.join()
    out = _percentiles(result["latencies"])
    if server_pid:  # includes the warm-up second: an upper bound per request
        out["server_cpu_us_per_request"] = (cpu1 - cpu0) / max(1, len(result["latencies"])) * 1e6
    out["qps"] = len(result["latencies"]) / result["seconds"]
    out["errors"] = result["errors"]
    out["concurrency"] = concurrency
    return out


def start_server(
    base: str, batching: str | None, extra: list[str], model_name: str = "tiny"
) -> tuple[subprocess.Popen, str]:
    cmd = [
        sys.executable,
        "-m",
        "recsys.cli",
        "serve",
        "--port=0",
        f"--model_name={model_name}",
        f"--model_base_path={base}",
        "--file_system_poll_wait_seconds=0",
        *extra,
    ]
    if batching:
        cmd += ["--enable_batching", f"--batching_parameters_file={batching}"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO, env=env
    )
    assert proc.stdout is not None  # stdout=PIPE
    for line in proc.stdout:
        if line.startswith("recsys serve: ready"):
            return proc, line.split("grpc=")[1].split()[0]
    raise RuntimeError("server did not start")


# A real export to benchmark instead of the tiny model: (model name, version dir); set by --export.
EXPORT: dict = {}


def requests(batch: int) -> bytes:
    """A serialized PredictRequest of ``batch`` rows (tiny model, or rows of the export's warm-up file)."""
    import numpy as np
    from tensorflow_serving.apis import model_pb2, predict_pb2

    from serving import codec

    rng = np.random.default_rng(0)
    if EXPORT:
        from serving.tools import client
        from serving.warmup import WARMUP_PATH

        first = next(client.read_request_log(os.path.join(EXPORT["path"], WARMUP_PATH)))
        req = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=EXPORT["name"]))
        for alias, value in first.items():
            rows = np.resize(value, (batch,) + value.shape[1:]) if value.ndim else value
            req.inputs[alias].CopyFrom(codec.from_numpy(rows))
        return req.SerializeToString()
    req = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="tiny"))
    cats = np.array(rng.choice([b"a", b"b", b"c"], batch), dtype=object)
    req.inputs["cat"].CopyFrom(codec.from_numpy(cats))
    req.inputs["x1"].CopyFrom(codec.from_numpy(rng.normal(size=batch).astype(np.float32)))
    req.inputs["x2"].CopyFrom(codec.from_numpy(rng.normal(size=batch).astype(np.float32)))
    return req.SerializeToString()


def in_process(path: str, iterations: int = 2000) -> dict:
    """The same Predict through ServingCore-free code: decode + validate + session call + encode."""

    from tensorflow_serving.apis import predict_pb2

    from serving import codec
    from serving.servable import Servable

    servable = Servable(EXPORT.get("name", "tiny"), 1, path)
    pooled = Servable(EXPORT.get("name", "tiny"), 1, path, caller_thread=False)  # the baseline
    out = {}
    for batch in (1, 256):
        req = predict_pb2.PredictRequest.FromString(requests(batch))
        sig = servable.signature("")
        base = pooled.signature("")
        inputs = {a: codec.to_numpy(t) for a, t in req.inputs.items()}
        outputs = sig.validate(inputs)
        for _ in range(200):
            sig.run(inputs, outputs)
            base.run(inputs, outputs)
        lat_call, lat_pool, lat_full = [], [], []
        for _ in range(iterations):  # candidate and baseline interleaved
            t0 = time.perf_counter()
            sig.run(inputs, outputs)
            t1 = time.perf_counter()
            base.run(inputs, outputs)
            lat_call.append(t1 - t0)
            lat_pool.append(time.perf_counter() - t1)
        for _ in range(iterations):
            t0 = time.perf_counter()
            r = predict_pb2.PredictRequest.FromString(req.SerializeToString())
            arrays = {a: codec.to_numpy(t) for a, t in r.inputs.items()}
            res = sig.run(arrays, sig.validate(arrays))
            predict_pb2.PredictResponse(outputs={k: codec.from_numpy(v) for k, v in res.items()})
            lat_full.append(time.perf_counter() - t0)
        out[f"batch_{batch}"] = {
            "session_call": _percentiles(lat_call),
            "session_call_inter_op_pool": _percentiles(lat_pool),
            "caller_thread_over_pool_p50": statistics.median(lat_call) / statistics.median(lat_pool),
            "decode_run_encode": _percentiles(lat_full),
        }
    servable.retire()
    pooled.retire()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--only", choices=["batching_off", "batching_on"], help="run one server mode")
    parser.add_argument(
        "--export",
        help="benchmark this model base path (<dir>/<version>/, with a "
        "warm-up file, e.g. the trainer's export) instead of the tiny test model",
    )
    args = parser.parse_args()
    sys.path.insert(0, REPO)
    import recsys.compat  # noqa: F401
    from serving import testing

    tmp = tempfile.mkdtemp(prefix="serving-bench-")
    if args.export:
        base = os.path.abspath(args.export)
        latest = max(int(d) for d in os.listdir(base) if d.isdigit())
        version_dir = os.path.join(base, str(latest))
        EXPORT.update(name=os.path.basename(base.rstrip("/")), path=version_dir)
    else:
        base = os.path.join(tmp, "tiny")
        version_dir = testing.export_tiny(base, 1)
    batching_file = os.path.join(tmp, "batching.config")
    with open(batching_file, "w") as fh:
        fh.write(
            "max_batch_size { value: 256 }\nbatch_timeout_micros { value: 0 }\n"
            "num_batch_threads { value: 2 }\nmax_enqueued_batches { value: 1000 }\n"
        )
    results = {
        "machine": {"cpus": os.cpu_count()},
        "duration_s": args.duration,
        "model": EXPORT.get("path", "serving.testing tiny model"),
        "in_process": in_process(version_dir),
    }
    p1, p256 = requests(1), requests(256)
    modes = [("batching_off", None), ("batching_on", batching_file)]
    if args.only:
        modes = [m for m in modes if m[0] == args.only]
    for name, batching in modes:
        proc, address = start_server(
            base,
            batching,
            [
                "--tensorflow_intra_op_parallelism=1",
                "--tensorflow_inter_op_parallelism=1",
                "--grpc_max_threads=32",
            ],
            EXPORT.get("name", "tiny"),
        )
        try:
            results[name] = {
                "batch_1_sequential": load(address, p1, 1, args.duration, server_pid=proc.pid),
                "batch_256_sequential": load(address, p256, 1, args.duration, server_pid=proc.pid),
                f"batch_1_{args.clients}_clients": load(
                    address, p1, args.clients, args.duration, server_pid=proc.pid
                ),
            }
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        print(json.dumps({name: results[name]}, indent=1), flush=True)
    print(json.dumps(results["in_process"], indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()

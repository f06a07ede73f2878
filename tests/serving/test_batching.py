"""Server-side batching: concurrent requests share model calls and each gets its own rows back."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from serving import codec
from serving.batching import BatchingParameters
from tests.serving.conftest import expected, predict_request


def test_parse_batching_parameters():
    p = BatchingParameters.parse("""
        max_batch_size { value: 128 }   # comment
        batch_timeout_micros { value: 2000 }
        num_batch_threads { value: 2 }
        max_enqueued_batches { value: 50 }
        pad_variable_length_inputs: true
    """)
    assert (p.max_batch_size, p.batch_timeout_micros, p.num_batch_threads, p.max_enqueued_batches) == (
        128,
        2000,
        2,
        50,
    )


def test_concurrent_requests_are_merged(base_path, serve, stubs):
    base_path(1)
    params = BatchingParameters(max_batch_size=64, batch_timeout_micros=5000, num_batch_threads=1)
    server = serve(base=base_path.path, batching=params)
    rng = np.random.default_rng(0)
    errors = []
    n_threads, per_thread = 16, 25

    def client(seed: int):
        stub = stubs(server).predict
        local = np.random.default_rng(seed)
        for _ in range(per_thread):
            n = int(local.integers(1, 4))
            rows = {
                "cat": np.array(local.choice([b"a", b"b", b"q"], n), dtype=object),
                "x1": local.normal(size=n).astype(np.float32),
                "x2": local.normal(size=n).astype(np.float32),
            }
            r = stub.Predict(predict_request(rows=rows), timeout=30)
            got = codec.to_numpy(r.outputs["probability"])
            if not np.allclose(got, expected(1, rows), rtol=1e-6):
                errors.append((rows, got))

    before = server.batch_stats()
    threads = [threading.Thread(target=client, args=(int(rng.integers(1 << 30)),)) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    after = server.batch_stats()
    batches, tasks = after[0] - before[0], after[1] - before[1]
    assert tasks == n_threads * per_thread
    assert batches < tasks / 3, (batches, tasks)  # several requests per model call


def test_oversize_and_unbatchable_requests_bypass_the_batcher(base_path, serve, stubs):
    base_path(1)
    server = serve(base=base_path.path, batching=BatchingParameters(max_batch_size=4))
    s = stubs(server)
    n = 10
    rows = {
        "cat": np.array([b"a"] * n, dtype=object),
        "x1": np.ones(n, np.float32),
        "x2": np.zeros(n, np.float32),
    }
    r = s.predict.Predict(predict_request(rows=rows))
    np.testing.assert_allclose(codec.to_numpy(r.outputs["probability"]), expected(1, rows), rtol=1e-6)


def test_batching_file_is_parsed_as_tf_servings_proto():
    """Every BatchingParameters field is accepted; unknown fields and bad syntax are refused."""
    p = BatchingParameters.parse(
        'thread_pool_name { value: "pool" }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 16\n'
        "enable_large_batch_splitting { value: true }\nmax_batch_size { value: 16 }"
    )
    assert p.max_batch_size == 16 and p.num_batch_threads == BatchingParameters().num_batch_threads
    with pytest.raises(ValueError, match="max_batchsize"):
        BatchingParameters.parse("max_batchsize { value: 16 }")
    with pytest.raises(ValueError, match="invalid batching parameters file"):
        BatchingParameters.parse("max_batch_size { value: 16")

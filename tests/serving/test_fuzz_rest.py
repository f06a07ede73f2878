"""Structured fuzzing (hypothesis) of a live ``recsys serve``: the REST half (gRPC: test_fuzz_grpc.py).

Row (``instances``), columnar (``inputs``) and ``examples`` bodies, ``signature_name``, ``b64`` objects,
nested lists, scalars, NaN/Infinity, huge integers, lone surrogates; then byte-level damage (truncation,
non-UTF-8, deep nesting) and every HTTP method on TF Serving's paths. What every answer must be:
tests/serving/fuzz_server.py.
"""

from __future__ import annotations

import base64
import collections
import http.client
import json

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.serving import fuzz_server
from tests.serving.conftest import expected
from tests.serving.fuzz_server import FUZZ, GOOD_ROWS, LIMIT

REST_ALLOWED = {200, 400, 404, 413}
COUNTS: collections.Counter = collections.Counter()


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    """``recsys serve`` on versions 1 and 2 (label stable=1), small limits from the CLI flags."""
    yield from fuzz_server.serve(exported, tmp_path_factory)


# ---- REST -----------------------------------------------------------------------------------------
def _b64():
    return st.one_of(
        st.binary(max_size=8).map(lambda b: {"b64": base64.b64encode(b).decode()}),
        st.sampled_from([{"b64": "!!"}, {"b64": "YQ="}, {"b64": 5}, {"b64": "\u00e9"}, {"b64": None}]),
    )


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["a", "b", "c", "zz", "", "\ud800", "é", "[[[", 10**400]),
    st.text(max_size=6),
    _b64(),
)
KEYS = ["cat", "x1", "x2", "inputs", "instances", "examples", "signature_name", "b64", "context", "junk"]
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=10,
)
NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), JSON)
STRING = st.one_of(st.sampled_from(["a", "b", "c", "zz"]), _b64(), JSON)
ROW = st.one_of(
    st.fixed_dictionaries({"cat": STRING, "x1": NUMBER, "x2": NUMBER}),
    st.dictionaries(st.sampled_from(["cat", "x1", "x2", "junk"]), JSON, max_size=4),
    JSON,
)
COLUMNS = st.one_of(
    st.integers(0, 4).flatmap(
        lambda n: st.fixed_dictionaries(
            {
                "cat": st.lists(STRING, min_size=n, max_size=n),
                "x1": st.lists(NUMBER, min_size=n, max_size=n),
                "x2": st.one_of(st.lists(NUMBER, min_size=n, max_size=n), NUMBER),
            }
        )
    ),
    JSON,
)
FEATURES = st.dictionaries(st.sampled_from(["cat", "x1", "x2", "other", "\udc00"]), JSON, max_size=4)
SIGNATURE = st.one_of(
    st.just({}),
    st.sampled_from(["", "serving_default", "regress", "classify", "predict_examples", "nope"]).map(
        lambda s: {"signature_name": s}
    ),
    JSON.map(lambda v: {"signature_name": v}),
)
GOOD_STRING = st.one_of(
    st.text(max_size=5),
    st.text(max_size=5),
    st.binary(max_size=5).map(lambda b: {"b64": base64.b64encode(b).decode()}),
    st.binary(max_size=5).map(lambda b: {"b64": base64.b64encode(b).decode()}),
    st.text(max_size=3).map(lambda t: t + "\ud800"),  # a lone surrogate: valid JSON, not valid Unicode
)
GOOD_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-(2**24), 2**24)
)
VALID_ROWS = st.lists(
    st.fixed_dictionaries({"cat": GOOD_STRING, "x1": GOOD_NUMBER, "x2": GOOD_NUMBER}), max_size=5
)
VALID_BODY = st.one_of(
    VALID_ROWS.map(lambda rows: {"instances": rows}),
    VALID_ROWS.map(lambda rows: {"inputs": {k: [r[k] for r in rows] for k in ("cat", "x1", "x2")}}),
)
BODY = st.one_of(
    VALID_BODY,
    st.tuples(st.lists(ROW, max_size=4), SIGNATURE).map(lambda t: {"instances": t[0], **t[1]}),
    st.tuples(COLUMNS, SIGNATURE).map(lambda t: {"inputs": t[0], **t[1]}),
    st.tuples(st.lists(FEATURES, max_size=3), FEATURES, SIGNATURE).map(
        lambda t: {"examples": t[0], "context": t[1], **t[2]}
    ),
    st.just({"instances": GOOD_ROWS}),
    JSON,
)
PATHS = [
    "/v1/models/tiny:predict",
    "/v1/models/tiny/versions/1:predict",
    "/v1/models/tiny/versions/2:regress",
    "/v1/models/tiny/labels/stable:classify",
    "/v1/models/tiny/labels/nope:predict",
    "/v1/models/tiny/versions/99999999999999999999:predict",
    "/v1/models/tiny:regress",
    "/v1/models/tiny:classify",
    "/v1/models/nope:predict",
    "/v1/models/%74iny:predict",
    "/v1/models/%FF:predict",
    "/v1/models/tiny",
    "/v1/models/tiny/metadata",
    "/v1/models/tiny/versions/1/metadata",
    "/v1/models/tiny:explode",
    "/v1/models//:predict",
    "/v2/models/tiny:predict",
    "/monitoring/prometheus/metrics",
    "/",
]


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """The serialized body, whole or damaged: cut, non-UTF-8 bytes spliced in, or nested deep."""
    kind = draw(st.sampled_from(["whole", "whole", "whole", "cut", "splice", "deep"]))
    if kind == "cut" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == "splice":
        pos = draw(st.integers(0, len(data)))
        junk = draw(
            st.sampled_from([b"\xff", b"\xc3(", b"\x00", b"\\u00", b'"', b"]", b"1e999", b"\xed\xa0\x80"])
        )
        return data[:pos] + junk + data[pos:]
    if kind == "deep":
        depth = draw(st.sampled_from([99, 100, 101, 1000, 100_000]))
        return b'{"instances":' + b"[" * depth + data + b"]" * depth + b"}"
    return data


@st.composite
def rest_requests(draw) -> tuple[str, str, bytes]:
    if draw(st.integers(0, 3)) == 0:  # a request the model answers: any values, any batch size
        path = draw(
            st.sampled_from(
                PATHS[:2] + ["/v1/models/tiny/labels/stable:predict", "/v1/models/%74iny:predict"]
            )
        )
        return "POST", path, json.dumps(draw(VALID_BODY)).encode()
    method = draw(st.sampled_from(["POST"] * 8 + ["GET", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    path = draw(st.sampled_from(PATHS))
    body = json.dumps(draw(BODY)).encode()
    return method, path, draw(damaged(body))


def _rest(port: int, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


DEEP = b'{"instances":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def test_fuzz_rest(served):
    proc, _, rest_port, _, log_path = served

    @FUZZ
    @given(rest_requests())
    @example(("POST", "/v1/models/tiny:predict", DEEP))
    @example(("POST", "/v1/models/tiny:predict", b" " * (LIMIT + 1)))
    @example(("PUT", "/v1/models/tiny", b"{}"))
    @example(("DELETE", "/v1/models/tiny/versions/1", b""))
    def run(request):
        method, path, body = request
        status, payload = _rest(rest_port, method, path, body)
        COUNTS[status] += 1
        assert status in REST_ALLOWED, (status, payload[:300], request)
        if status != 200 and method != "HEAD":
            assert "error" in json.loads(payload)

    run()
    fuzz_server.print_counts("REST", COUNTS)
    assert COUNTS[200] > 0 and COUNTS[400] > 0 and COUNTS[413] > 0
    status, payload = _rest(
        rest_port, "POST", "/v1/models/tiny:predict", json.dumps({"instances": GOOD_ROWS}).encode()
    )
    assert status == 200 and proc.poll() is None
    np.testing.assert_allclose(json.loads(payload)["predictions"], expected(2), rtol=1e-6)
    fuzz_server.assert_clean_log(log_path)
